/* Samples a NanoVDB grid buffer through PNanoVDB.h compiled as plain C, the reader GPU shaders use.
 * Built with -DPNANOVDB_C -fno-strict-aliasing and linked into checker.cpp. */
#include <stdint.h>
#include <nanovdb/PNanoVDB.h>

int pnano_grid_type(const void *data)
{
    pnanovdb_buf_t buf = pnanovdb_make_buf((uint32_t *)data, 0);
    pnanovdb_grid_handle_t grid = {pnanovdb_address_null()};
    return (int)pnanovdb_grid_get_grid_type(buf, grid);
}

/* For n coordinates (x,y,z int32 triples) write `channels` floats per voxel and its active state.
 * Returns 0, or -1 for a grid type this sampler does not know. */
int pnano_sample(const void *data, const int32_t *ijk, uint64_t n, float *values, uint8_t *active)
{
    pnanovdb_buf_t buf = pnanovdb_make_buf((uint32_t *)data, 0);
    pnanovdb_grid_handle_t grid = {pnanovdb_address_null()};
    pnanovdb_grid_type_t type = pnanovdb_grid_get_grid_type(buf, grid);
    pnanovdb_tree_handle_t tree = pnanovdb_grid_get_tree(buf, grid);
    pnanovdb_root_handle_t root = pnanovdb_tree_get_root(buf, tree);
    pnanovdb_readaccessor_t acc;
    pnanovdb_readaccessor_init(&acc, root);
    for (uint64_t i = 0; i < n; ++i) {
        pnanovdb_coord_t c;
        c.x = ijk[3 * i];
        c.y = ijk[3 * i + 1];
        c.z = ijk[3 * i + 2];
        pnanovdb_uint32_t level = 0;
        pnanovdb_address_t a = pnanovdb_readaccessor_get_value_address_and_level(type, buf, &acc, &c, &level);
        switch (type) {
        case PNANOVDB_GRID_TYPE_FLOAT: values[i] = pnanovdb_read_float(buf, a); break;
        case PNANOVDB_GRID_TYPE_VEC3F:
            values[3 * i] = pnanovdb_read_float(buf, a);
            values[3 * i + 1] = pnanovdb_read_float(buf, pnanovdb_address_offset(a, 4));
            values[3 * i + 2] = pnanovdb_read_float(buf, pnanovdb_address_offset(a, 8));
            break;
        case PNANOVDB_GRID_TYPE_FP4: values[i] = pnanovdb_root_fp4_read_float(buf, a, &c, level); break;
        case PNANOVDB_GRID_TYPE_FP8: values[i] = pnanovdb_root_fp8_read_float(buf, a, &c, level); break;
        case PNANOVDB_GRID_TYPE_FP16: values[i] = pnanovdb_root_fp16_read_float(buf, a, &c, level); break;
        case PNANOVDB_GRID_TYPE_FPN: values[i] = pnanovdb_root_fpn_read_float(buf, a, &c, level); break;
        default: return -1;
        }
        active[i] = (uint8_t)pnanovdb_readaccessor_is_active(type, buf, &acc, &c);
    }
    return 0;
}
