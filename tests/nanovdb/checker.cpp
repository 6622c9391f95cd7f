// Judge of our .nvdb files, built from the official NanoVDB 32.4 headers (Debian libnanovdb-dev).
//
//   checker FILE.nvdb OUTDIR [QUERIES.bin] [--no-dump]
//
// For every grid in FILE: load it with nanovdb::io::readGrids, run GridValidator::check(grid, detailed=true),
// recompute bboxes/statistics with nanovdb::gridStats on a copy and compare every node with what the file says,
// check the breadth-first node layout (the 32.7 validator requires it; the 32.4 one ignores leaves), dump all active
// voxels and tiles found by walking the tree with the C++ API, and sample the query coordinates both with the C++
// ReadAccessor and with PNanoVDB.h compiled as C. A JSON summary goes to stdout, arrays to OUTDIR/g<i>_*.bin.
#include <nanovdb/NanoVDB.h>
#include <nanovdb/util/GridStats.h>
#include <nanovdb/util/GridValidator.h>
#include <nanovdb/util/IO.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

extern "C" int pnano_sample(const void *data, const int32_t *ijk, uint64_t n, float *values, uint8_t *active);
extern "C" int pnano_grid_type(const void *data);

using namespace nanovdb;

static std::string jsonEscape(const std::string &s)
{
    std::string o;
    for (char c : s) {
        if (c == '"' || c == '\\') o += '\\';
        if (static_cast<unsigned char>(c) < 0x20) { o += ' '; continue; }
        o += c;
    }
    return o;
}

template <typename T> static void writeVec(const std::string &path, const std::vector<T> &v)
{
    std::ofstream os(path, std::ios::binary);
    os.write(reinterpret_cast<const char *>(v.data()), v.size() * sizeof(T));
}

static void put(std::vector<float> &out, float v) { out.push_back(v); }
static void put(std::vector<float> &out, const Vec3f &v) { out.push_back(v[0]); out.push_back(v[1]); out.push_back(v[2]); }

static bool near(double a, double b) { return std::fabs(a - b) <= 1e-5 * std::fmax(std::fabs(a), std::fabs(b)) + 1e-12; }
static bool same(float a, float b) { return a == b || (std::isnan(a) && std::isnan(b)); }
static bool same(const Vec3f &a, const Vec3f &b) { return a.lengthSqr() == b.lengthSqr(); }
static bool bboxEq(const CoordBBox &a, const CoordBBox &b) { return (a.empty() && b.empty()) || a == b; }

struct Report {
    std::string error;        // first structural problem found by this checker
    uint64_t statsMismatch = 0;
    std::string statsDetail;  // first few mismatches
    uint64_t layoutErrors = 0;
    void stat(const std::string &what)
    {
        if (statsMismatch++ < 5) statsDetail += what + "; ";
    }
};

template <typename BuildT> struct Checker {
    using GridT = NanoGrid<BuildT>;
    using LeafT = NanoLeaf<BuildT>;
    using LowerT = NanoLower<BuildT>;
    using UpperT = NanoUpper<BuildT>;
    using ValueT = typename GridT::ValueType;
    static constexpr int C = std::is_same<ValueT, Vec3f>::value ? 3 : 1;

    const GridT *g;
    const uint8_t *base;
    const uint8_t *copy;  // same grid after gridStats
    Report rep;
    std::vector<int32_t> voxIjk, tileIjk;
    std::vector<float> voxVal, tileVal;
    bool dump;

    template <typename T> const T *twin(const T *p) const
    {
        return reinterpret_cast<const T *>(copy + (reinterpret_cast<const uint8_t *>(p) - base));
    }

    template <typename NodeT> void compareInternal(const NodeT *n, const char *what)
    {
        const auto *a = n->data();
        const auto *b = twin(n)->data();
        std::ostringstream os;
        if (!bboxEq(a->mBBox, b->mBBox)) os << what << " bbox";
        else if (a->mFlags != b->mFlags) os << what << " flags " << a->mFlags << "!=" << b->mFlags;
        else if (!a->mBBox.empty() && !(same(a->mMinimum, b->mMinimum) && same(a->mMaximum, b->mMaximum)))
            os << what << " min/max";
        else if (!a->mBBox.empty() && !(near(a->mAverage, b->mAverage) && near(a->mStdDevi, b->mStdDevi)))
            os << what << " avg/std " << a->mAverage << "/" << b->mAverage << " " << a->mStdDevi << "/" << b->mStdDevi;
        if (!os.str().empty()) rep.stat(os.str());
    }

    void compareLeafStats(const LeafT *l)
    {
        const auto *a = l->data();
        const auto *b = twin(l)->data();
        std::ostringstream os;
        if (std::memcmp(&a->mBBoxMin, &b->mBBoxMin, 12) || std::memcmp(a->mBBoxDif, b->mBBoxDif, 3)) os << "leaf bbox";
        else if (a->mFlags != b->mFlags) os << "leaf flags " << int(a->mFlags) << "!=" << int(b->mFlags);
        else if (!leafStatsEqual(a, b)) os << "leaf stats at " << l->origin()[0] << "," << l->origin()[1] << "," << l->origin()[2];
        if (!os.str().empty()) rep.stat(os.str());
    }

    template <typename D> static bool leafStatsEqual(const D *a, const D *b)
    {
        if constexpr (std::is_same<BuildT, float>::value || std::is_same<BuildT, Vec3f>::value) {
            return same(a->mMinimum, b->mMinimum) && same(a->mMaximum, b->mMaximum) && near(a->mAverage, b->mAverage) &&
                   near(a->mStdDevi, b->mStdDevi);
        } else {  // quantized statistics: min/max exact, avg/dev may round one step differently
            return a->mMin == b->mMin && a->mMax == b->mMax && std::abs(int(a->mAvg) - int(b->mAvg)) <= 1 &&
                   std::abs(int(a->mDev) - int(b->mDev)) <= 1;
        }
    }

    static uint64_t leafSize(const LeafT *l)
    {
        if constexpr (std::is_same<BuildT, FpN>::value) return 96u + 64u * (1u << (l->data()->mFlags >> 5));
        else return sizeof(LeafT);
    }

    void run()
    {
        const auto &tree = g->tree();
        const auto &root = tree.root();
        const auto *rd = root.data();
        const auto *rd2 = twin(&root)->data();
        if (!bboxEq(rd->mBBox, rd2->mBBox)) rep.stat("root bbox");
        else if (!rd->mBBox.empty() && !(same(rd->mMinimum, rd2->mMinimum) && same(rd->mMaximum, rd2->mMaximum) &&
                                        near(rd->mAverage, rd2->mAverage) && near(rd->mStdDevi, rd2->mStdDevi)))
            rep.stat("root stats");
        const auto *gd2 = reinterpret_cast<const GridData *>(copy);
        for (int i = 0; i < 2; ++i)
            for (int k = 0; k < 3; ++k)
                if (!near(g->worldBBox()[i][k], gd2->mWorldBBox[i][k])) rep.stat("world bbox");
        if (g->data()->mFlags != gd2->mFlags) rep.stat("grid flags");

        // breadth-first layout: nodes of each level contiguous, in traversal order, starting at the tree's offsets
        const uint8_t *treeBase = reinterpret_cast<const uint8_t *>(&tree);
        const auto *td = reinterpret_cast<const TreeData<3> *>(&tree);
        const uint8_t *next[3] = {treeBase + td->mNodeOffset[0], treeBase + td->mNodeOffset[1], treeBase + td->mNodeOffset[2]};
        const uint8_t *end = base + g->gridSize();
        uint64_t counts[3] = {0, 0, 0};
        auto expect = [&](const void *p, int level, uint64_t size) {
            const uint8_t *q = reinterpret_cast<const uint8_t *>(p);
            if (q != next[level] || q + size > end || (uintptr_t(q) - uintptr_t(base)) % 32) {
                ++rep.layoutErrors;
                if (rep.error.empty()) rep.error = "node " + std::to_string(level) + " out of breadth-first order";
            }
            next[level] = q + size;
            ++counts[level];
        };
        for (uint32_t i = 0; i < rd->mTableSize; ++i) {
            const auto *tile = rd->tile(i);
            if (tile->isChild()) {
                const UpperT *up = rd->getChild(tile);
                expect(up, 2, sizeof(UpperT));
                compareInternal(up, "upper");
                walkUpper(up, expect);
            } else if (tile->state) {
                addTile(tile->origin(), 4096, tile->value);
            }
        }
        for (int l = 0; l < 3; ++l)
            if (counts[l] != tree.nodeCount(l)) {
                ++rep.layoutErrors;
                if (rep.error.empty()) rep.error = "node count of level " + std::to_string(l) + " differs from TreeData";
            }
        if (tree.nodeCount(0) && next[0] != end && rep.error.empty()) rep.error = "leaves do not end at the grid end";
    }

    template <typename F> void walkUpper(const UpperT *up, F &expect)
    {
        const auto *d = up->data();
        for (uint32_t n = 0; n < UpperT::SIZE; ++n) {
            if (d->mChildMask.isOn(n)) {
                const LowerT *lo = d->getChild(n);
                expect(lo, 1, sizeof(LowerT));
                compareInternal(lo, "lower");
                walkLower(lo, expect);
            } else if (d->mValueMask.isOn(n)) {
                addTile(up->offsetToGlobalCoord(n), 128, d->mTable[n].value);
            }
        }
    }

    template <typename F> void walkLower(const LowerT *lo, F &expect)
    {
        const auto *d = lo->data();
        for (uint32_t n = 0; n < LowerT::SIZE; ++n) {
            if (d->mChildMask.isOn(n)) {
                const LeafT *leaf = d->getChild(n);
                expect(leaf, 0, leafSize(leaf));
                compareLeafStats(leaf);
                if (dump)
                    for (uint32_t v = 0; v < 512; ++v)
                        if (leaf->isActive(v)) {
                            Coord c = leaf->offsetToGlobalCoord(v);
                            voxIjk.insert(voxIjk.end(), {c[0], c[1], c[2]});
                            put(voxVal, leaf->getValue(v));
                        }
            } else if (d->mValueMask.isOn(n)) {
                addTile(lo->offsetToGlobalCoord(n), 8, d->mTable[n].value);
            }
        }
    }

    void addTile(const Coord &c, int dim, const ValueT &v)
    {
        tileIjk.insert(tileIjk.end(), {c[0], c[1], c[2], dim});
        put(tileVal, v);
    }
};

template <typename BuildT>
static std::string checkGrid(GridHandle<HostBuffer> &handle, int index, const std::string &outdir,
                             const std::vector<int32_t> &queries, bool dump)
{
    using CheckerT = Checker<BuildT>;
    const NanoGrid<BuildT> *grid = handle.grid<BuildT>();
    std::ostringstream js;
    if (!grid) return "{\"index\":" + std::to_string(index) + ",\"valid\":false,\"error\":\"grid<T>() returned null\"}";
    const std::string err = GridValidator<BuildT>::check(*grid, true);

    const uint64_t size = grid->gridSize();
    uint8_t *copy = static_cast<uint8_t *>(std::aligned_alloc(32, (size + 31) / 32 * 32));
    std::memcpy(copy, grid, size);
    gridStats(*reinterpret_cast<NanoGrid<BuildT> *>(copy), StatsMode::All);

    CheckerT ck{grid, reinterpret_cast<const uint8_t *>(grid), copy};
    ck.dump = dump;
    ck.run();
    std::free(copy);
    const std::string pre = outdir + "/g" + std::to_string(index) + "_";
    if (dump) {
        writeVec(pre + "vox_ijk.bin", ck.voxIjk);
        writeVec(pre + "vox_val.bin", ck.voxVal);
        writeVec(pre + "tile_ijk.bin", ck.tileIjk);
        writeVec(pre + "tile_val.bin", ck.tileVal);
    }

    uint64_t pnanoMismatch = 0;
    int pnanoStatus = 0;
    if (!queries.empty()) {
        const uint64_t m = queries.size() / 3;
        constexpr int C = CheckerT::C;
        std::vector<float> cv(m * C), pv(m * C);
        std::vector<uint8_t> ca(m), pa(m);
        // Tree (uncached) lookups: in 32.4 ReadAccessor::isActive returns false for active root tiles
        // (RootNode::isActiveAndCache ignores tile->state), a reader bug, not a property of the file.
        const auto &tree = grid->tree();
        for (uint64_t i = 0; i < m; ++i) {
            const Coord c(queries[3 * i], queries[3 * i + 1], queries[3 * i + 2]);
            std::vector<float> tmp;
            put(tmp, tree.getValue(c));
            for (int k = 0; k < C; ++k) cv[i * C + k] = tmp[k];
            ca[i] = tree.isActive(c);
        }
        pnanoStatus = pnano_sample(grid, queries.data(), m, pv.data(), pa.data());
        for (uint64_t i = 0; i < m; ++i) {
            bool ok = ca[i] == pa[i];
            for (int k = 0; k < C; ++k) ok = ok && std::memcmp(&cv[i * C + k], &pv[i * C + k], 4) == 0;
            pnanoMismatch += !ok;
        }
        writeVec(pre + "q_cpp_val.bin", cv);
        writeVec(pre + "q_cpp_act.bin", ca);
        writeVec(pre + "q_pnano_val.bin", pv);
        writeVec(pre + "q_pnano_act.bin", pa);
    }

    const auto &tree = grid->tree();
    const auto *gd = grid->data();
    const auto *td = reinterpret_cast<const TreeData<3> *>(&tree);
    js.precision(17);
    js << "{\"index\":" << index << ",\"name\":\"" << jsonEscape(grid->gridName()) << "\""
       << ",\"type\":\"" << toStr(grid->gridType()) << "\",\"class\":\"" << toStr(grid->gridClass()) << "\""
       << ",\"valid\":" << (err.empty() ? "true" : "false") << ",\"error\":\"" << jsonEscape(err) << "\""
       << ",\"checker_error\":\"" << jsonEscape(ck.rep.error) << "\",\"layout_errors\":" << ck.rep.layoutErrors
       << ",\"stats_mismatch\":" << ck.rep.statsMismatch << ",\"stats_detail\":\"" << jsonEscape(ck.rep.statsDetail) << "\""
       << ",\"pnano_type\":" << pnano_grid_type(grid) << ",\"pnano_status\":" << pnanoStatus
       << ",\"pnano_mismatch\":" << pnanoMismatch << ",\"voxel_count\":" << grid->activeVoxelCount()
       << ",\"node_count\":[" << tree.nodeCount(0) << "," << tree.nodeCount(1) << "," << tree.nodeCount(2) << "]"
       << ",\"tile_count\":[" << td->mTileCount[0] << "," << td->mTileCount[1] << "," << td->mTileCount[2] << "]"
       << ",\"grid_index\":" << gd->mGridIndex << ",\"grid_count\":" << gd->mGridCount
       << ",\"version\":\"" << gd->mVersion.c_str() << "\",\"checksum\":" << grid->checksum()
       << ",\"grid_size\":" << grid->gridSize() << ",\"flags\":" << gd->mFlags
       << ",\"voxel_size\":[" << grid->voxelSize()[0] << "," << grid->voxelSize()[1] << "," << grid->voxelSize()[2] << "]"
       << ",\"world_bbox\":[" << grid->worldBBox()[0][0] << "," << grid->worldBBox()[0][1] << "," << grid->worldBBox()[0][2]
       << "," << grid->worldBBox()[1][0] << "," << grid->worldBBox()[1][1] << "," << grid->worldBBox()[1][2] << "]"
       << ",\"index_bbox\":[" << tree.root().bbox()[0][0] << "," << tree.root().bbox()[0][1] << "," << tree.root().bbox()[0][2]
       << "," << tree.root().bbox()[1][0] << "," << tree.root().bbox()[1][1] << "," << tree.root().bbox()[1][2] << "]";
    const Vec3d p = grid->indexToWorld(Vec3d(1.0, 2.0, 3.0));
    js << ",\"index_to_world_123\":[" << p[0] << "," << p[1] << "," << p[2] << "]}";
    return js.str();
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        std::fprintf(stderr, "usage: checker FILE.nvdb OUTDIR [QUERIES.bin] [--no-dump]\n");
        return 2;
    }
    std::vector<int32_t> queries;
    bool dump = true;
    for (int a = 3; a < argc; ++a) {
        if (std::string(argv[a]) == "--no-dump") { dump = false; continue; }
        std::ifstream is(argv[a], std::ios::binary | std::ios::ate);
        const auto n = static_cast<size_t>(is.tellg());
        queries.resize(n / 4);
        is.seekg(0);
        is.read(reinterpret_cast<char *>(queries.data()), n);
    }
    std::vector<GridHandle<HostBuffer>> handles;
    try {
        handles = io::readGrids<HostBuffer, std::vector>(argv[1]);
    } catch (const std::exception &e) {
        std::printf("{\"read_error\":\"%s\",\"grids\":[]}\n", jsonEscape(e.what()).c_str());
        return 0;
    }
    std::string out = "{\"read_error\":\"\",\"grids\":[";
    for (size_t i = 0; i < handles.size(); ++i) {
        auto &h = handles[i];
        std::string js;
        switch (h.gridMetaData()->gridType()) {
        case GridType::Float: js = checkGrid<float>(h, int(i), argv[2], queries, dump); break;
        case GridType::Vec3f: js = checkGrid<Vec3f>(h, int(i), argv[2], queries, dump); break;
        case GridType::Fp4: js = checkGrid<Fp4>(h, int(i), argv[2], queries, dump); break;
        case GridType::Fp8: js = checkGrid<Fp8>(h, int(i), argv[2], queries, dump); break;
        case GridType::Fp16: js = checkGrid<Fp16>(h, int(i), argv[2], queries, dump); break;
        case GridType::FpN: js = checkGrid<FpN>(h, int(i), argv[2], queries, dump); break;
        default: js = "{\"index\":" + std::to_string(i) + ",\"valid\":false,\"error\":\"unsupported grid type\"}";
        }
        out += (i ? "," : "") + js;
    }
    out += "]}";
    std::printf("%s\n", out.c_str());
    return 0;
}
