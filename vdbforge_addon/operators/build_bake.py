"""Build & Bake in this Blender session, and Render Preview in a crash-isolated worker process."""

from pathlib import Path

import bpy

from ..blender.bake import bake_domain
from ..blender.gas_scene import build_gas_scene
from ..blender.runtime import is_module_mode, prepare_runtime
from ..blender.scene_cleanup import clear_fluid_cache, remove_leaked_particle_settings, remove_previous_build
from ..core.atomic import check_writable_dir
from ..core.errors import OutputError, PresetError, VDBForgeError
from ..core.parameters import apply_overrides
from ..core.paths import user_data_dir
from ..core.preset_library import resolve_preset
from ..core.preset_model import Preset
from ..core.render_run import RenderOptions, resolve_render_preset, run_render
from ..core.worker_client import WorkerCommand
from ..panels.properties import tunable_overrides
from .preview_image import load_preview


def output_folder(props: bpy.types.PropertyGroup) -> Path:
    if not props.output_dir:
        return user_data_dir() / "scenes"
    if props.output_dir.startswith("//") and not bpy.data.filepath:
        raise OutputError(
            f"output folder '{props.output_dir}' is relative to the .blend file, which is not saved yet; "
            "save it or choose an absolute folder"
        )
    return Path(bpy.path.abspath(props.output_dir)).expanduser().absolute()


def chosen_preset(props: bpy.types.PropertyGroup, options: RenderOptions) -> Preset:
    if not props.preset:
        raise PresetError("no preset is selected")
    # The tunables edited in the Preset panel are part of what the user chose.
    return resolve_render_preset(apply_overrides(resolve_preset(props.preset), tunable_overrides(props)), options)


def worker_command() -> tuple[WorkerCommand | None, list[str]]:
    """How to start a worker from this session, and the folders its Python needs for our bundled wheels."""
    if is_module_mode():
        return None, []  # the same interpreter, with the same environment, can import everything
    import annotated_types
    import pydantic
    import pydantic_core
    import typing_extensions
    import typing_inspection

    # `--factory-startup` workers do not load extensions, so the wheels Blender installed for us are not on their
    # path unless passed explicitly.
    modules = (pydantic, pydantic_core, annotated_types, typing_extensions, typing_inspection)
    files = [Path(m.__file__).resolve() for m in modules]
    folders = {str(f.parents[1] if f.name == "__init__.py" else f.parent) for f in files}
    return WorkerCommand.detect(bpy.app.binary_path or None), sorted(folders)


class _VDBForgeOperator:
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return getattr(context.scene, "vdbforge", None) is not None and context.mode == "OBJECT"


class VDBFORGE_OT_build_bake(_VDBForgeOperator, bpy.types.Operator):
    """Build the chosen preset's simulation in the VDBForge collection and bake it (replaces an earlier build)"""

    bl_idname = "vdbforge.build_bake"
    bl_label = "Build & Bake"

    bake: bpy.props.BoolProperty(
        name="Bake", description="Bake after building (off: build the scene only)", default=True
    )

    def execute(self, context: bpy.types.Context) -> set[str]:
        props = context.scene.vdbforge
        try:
            preset = chosen_preset(
                props, RenderOptions(resolution=props.resolution, frames=(props.frame_start, props.frame_end, 1))
            )
            cache_dir = check_writable_dir(output_folder(props) / "cache")
            remove_previous_build()
            clear_fluid_cache(cache_dir)
            prepare_runtime()
            build_scene = build_gas_scene
            if preset.domain.type == "liquid":
                from ..blender.liquid_scene import build_liquid_scene as build_scene
            particle_settings = set(bpy.data.particles)
            try:
                domain = build_scene(context.scene, preset, cache_dir)
                if not self.bake:
                    self.report({"INFO"}, f"Built '{preset.name}' at resolution {preset.domain.resolution}")
                    return {"FINISHED"}
                frames = bake_domain(domain)
            finally:
                remove_leaked_particle_settings(particle_settings)
        except VDBForgeError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report(
            {"INFO"},
            f"Baked '{preset.name}' frames {frames[0]}-{frames[-1]} at resolution {preset.domain.resolution} "
            f"into {cache_dir}",
        )
        return {"FINISHED"}


class VDBFORGE_OT_render_preview(_VDBForgeOperator, bpy.types.Operator):
    """Bake, export and render preview angles of the chosen preset in a separate Blender process"""

    bl_idname = "vdbforge.render_preview"
    bl_label = "Render Preview"

    def execute(self, context: bpy.types.Context) -> set[str]:
        props = context.scene.vdbforge
        options = RenderOptions(
            resolution=props.resolution, frames=(props.frame_start, props.frame_end, 1), angles=props.angles
        )
        try:
            if not props.preset:
                raise PresetError("no preset is selected")
            preset = resolve_preset(props.preset)  # run_render applies the options itself
            out = output_folder(props) / "renders" / preset.id
            command, extra_sys_path = worker_command()
            result = run_render(preset, out, options, command=command, extra_sys_path=extra_sys_path)
        except VDBForgeError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        sheet = result.get("contact_sheet")
        if sheet and Path(sheet).is_file():
            load_preview(props, sheet)
        shown = sheet or str(out / "result.json")
        self.report(
            {"INFO"}, f"Rendered {len(result.get('previews', []))} preview image(s) of '{preset.name}': {shown}"
        )
        return {"FINISHED"}


classes = (VDBFORGE_OT_build_bake, VDBFORGE_OT_render_preview)
