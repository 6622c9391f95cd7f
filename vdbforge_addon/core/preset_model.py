"""Preset schema: validated data describing one volumetric asset and its tunable parameter space.

Presets are data only. Every model forbids unknown keys and bounds every number, so a hostile or mistyped file is
rejected with a message naming the offending key instead of reaching Blender.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from .scoring_settings import ScoringSettings
from .strict_model import Strict

SCHEMA_VERSION = 1
MAX_RESOLUTION = 512
MAX_FRAMES = 2000

Identifier = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
Text = Annotated[str, StringConstraints(max_length=2000)]
Unit = Annotated[float, Field(ge=0.0, le=1.0)]
Coord = Annotated[float, Field(ge=-1000.0, le=1000.0)]
Positive = Annotated[float, Field(gt=0.0, le=1000.0)]
Vec3 = tuple[Coord, Coord, Coord]
Size3 = tuple[Positive, Positive, Positive]
RGB = tuple[Unit, Unit, Unit]


class Flame(Strict):
    burning_rate: float = Field(0.75, ge=0.01, le=4.0)
    smoke: float = Field(1.0, ge=0.0, le=8.0)
    vorticity: float = Field(0.5, ge=0.0, le=2.0)
    ignition: float = Field(1.5, ge=0.5, le=5.0)
    max_temp: float = Field(3.0, ge=1.0, le=10.0)
    smoke_color: RGB = (0.7, 0.7, 0.7)


class Noise(Strict):
    enabled: bool = False
    upres: int = Field(2, ge=1, le=4)
    strength: float = Field(1.0, ge=0.0, le=10.0)
    scale: float = Field(2.0, ge=0.0001, le=10.0)
    time_anim: float = Field(0.1, ge=0.0, le=10.0)


class Domain(Strict):
    type: Literal["gas", "liquid"] = "gas"
    resolution: int = Field(64, ge=8, le=MAX_RESOLUTION)
    size: Size3 = (4.0, 4.0, 4.0)
    center: Vec3 = (0.0, 0.0, 2.0)
    frame_start: int = Field(1, ge=1, le=MAX_FRAMES)
    frame_end: int = Field(48, ge=1, le=MAX_FRAMES)
    fps: int = Field(24, ge=1, le=240)
    time_scale: float = Field(1.0, ge=0.05, le=10.0)
    vorticity: float = Field(0.0, ge=0.0, le=10.0)
    alpha: float = Field(1.0, ge=-5.0, le=5.0, description="density buoyancy")
    beta: float = Field(1.0, ge=-5.0, le=5.0, description="heat buoyancy")
    gravity: Vec3 = (0.0, 0.0, -9.81)
    dissolve_time: int | None = Field(None, ge=1, le=10000, description="frames; None keeps smoke forever")
    dissolve_log: bool = False
    flame: Flame = Field(default_factory=Flame)
    noise: Noise = Field(default_factory=Noise)
    open_top: bool = True
    open_bottom: bool = Field(False, description="zero-gravity scenes leave every wall open")

    @model_validator(mode="after")
    def _frames_ordered(self) -> Domain:
        if self.frame_end < self.frame_start:
            raise ValueError(f"frame_end ({self.frame_end}) is before frame_start ({self.frame_start})")
        return self


class Emitter(Strict):
    shape: Literal["sphere", "cube", "cylinder", "plane", "torus"] = "sphere"
    location: Vec3 = (0.0, 0.0, 0.5)
    rotation: Vec3 = (0.0, 0.0, 0.0)
    scale: Size3 = (0.5, 0.5, 0.5)
    flow_type: Literal["smoke", "fire", "both", "liquid"] = "both"
    flow_behavior: Literal["inflow", "geometry", "outflow"] = "inflow"
    fuel_amount: float = Field(1.0, ge=0.0, le=10.0)
    temperature: float = Field(1.0, ge=-10.0, le=10.0)
    density: float = Field(1.0, ge=0.0, le=10.0)
    smoke_color: RGB = (0.7, 0.7, 0.7)
    surface_distance: float = Field(1.5, ge=0.0, le=10.0)
    volume_density: float = Field(0.0, ge=0.0, le=1.0)
    initial_velocity: Vec3 | None = None
    velocity_normal: float = Field(0.0, ge=-10.0, le=10.0)
    velocity_random: float = Field(0.0, ge=0.0, le=10.0)
    emit_frames: tuple[int, int] | None = Field(None, description="first and last frame that emit; None = always")
    noise_texture: float | None = Field(None, ge=0.01, le=100.0, description="cloud-texture size; None = uniform")
    subframes: int = Field(0, ge=0, le=20)


class ForceField(Strict):
    type: Literal["turbulence", "vortex", "wind", "force"] = "turbulence"
    location: Vec3 = (0.0, 0.0, 2.0)
    rotation: Vec3 = (0.0, 0.0, 0.0)
    strength: float = Field(1.0, ge=-1000.0, le=1000.0)
    flow: float = Field(0.0, ge=0.0, le=100.0)
    size: float = Field(1.0, ge=0.0, le=100.0)
    noise: float = Field(0.0, ge=0.0, le=100.0)
    seed: int = Field(1, ge=1, le=128)
    # Where a field acts, so one field can shape one region (an anvil under the ceiling, a disk's hollow core)
    # without pushing the rest; the defaults are Blender's, so presets without these bake as before.
    shape: Literal["point", "line", "plane"] = Field("point", description="line: radial from the field's z axis")
    z_direction: Literal["both", "positive", "negative"] = Field("both", description="positive: only above the field")
    max_distance: float | None = Field(None, gt=0.0, le=1000.0, description="no effect beyond this (m)")


class Material(Strict):
    density_scale: float = Field(5.0, ge=0.0, le=1000.0)
    color: RGB = (0.6, 0.6, 0.6)
    absorption_color: RGB = (0.0, 0.0, 0.0)
    anisotropy: float = Field(0.0, ge=-0.95, le=0.95)
    emission_strength: float = Field(0.0, ge=0.0, le=1000.0, description="multiplies the emission grid")
    emission_source: Literal["flame", "density", "temperature"] = "flame"
    emission_gamma: float = Field(1.0, ge=0.1, le=10.0)
    emission_color_mode: Literal["blackbody", "color", "gradient"] = "blackbody"
    temperature_min: float = Field(800.0, ge=0.0, le=40000.0, description="Kelvin at emission 0 (blackbody)")
    temperature_max: float = Field(2200.0, ge=0.0, le=40000.0, description="Kelvin at emission 1 (blackbody)")
    emission_tint: RGB = (1.0, 1.0, 1.0)
    emission_color: RGB = (1.0, 0.4, 0.1)
    emission_color_hot: RGB = (0.3, 0.5, 1.0)
    gradient_range: float = Field(2.0, gt=0.0, le=100.0, description="temperature grid value where gradient is hot")
    core_radius: float = Field(
        0.0,
        ge=0.0,
        le=1000.0,
        description="metres: shading fades the volume out within this distance of the domain's vertical axis "
        "(a black hole's shadow); 0 turns it off",
    )
    edge_radius: float = Field(
        0.0,
        ge=0.0,
        le=1000.0,
        description="metres: shading fades the volume out beyond this distance of the domain's centre "
        "(a round disk or cloud in a box-shaped domain); 0 turns it off",
    )

    @model_validator(mode="after")
    def _radii_ordered(self) -> Material:
        if self.edge_radius and self.edge_radius <= self.core_radius:
            raise ValueError(f"edge_radius ({self.edge_radius}) must be larger than core_radius ({self.core_radius})")
        return self


class Light(Strict):
    world_color: RGB = (0.05, 0.05, 0.06)
    world_strength: float = Field(1.0, ge=0.0, le=100.0)
    sun_strength: float = Field(3.0, ge=0.0, le=100.0)
    sun_color: RGB = (1.0, 0.95, 0.9)
    sun_elevation: float = Field(45.0, ge=-90.0, le=90.0)
    sun_azimuth: float = Field(30.0, ge=-360.0, le=360.0)


class ViewAngle(Strict):
    azimuth: float = Field(0.0, ge=-360.0, le=360.0, description="degrees; 0 looks from -Y (front), 90 from +X")
    elevation: float = Field(10.0, ge=-89.0, le=89.0)


class RenderRig(Strict):
    width: int = Field(256, ge=16, le=4096)
    height: int = Field(256, ge=16, le=4096)
    samples: int = Field(16, ge=1, le=4096)
    denoise: bool = True
    seed: int = Field(0, ge=0, le=2**31 - 1)
    angles: int = Field(4, ge=1, le=16)
    views: list[ViewAngle] = Field(
        default_factory=list, max_length=16, description="explicit camera angles; when set they replace `angles`"
    )
    elevation: float = Field(10.0, ge=-89.0, le=89.0)
    lens: float = Field(50.0, ge=10.0, le=300.0)
    framing: float = Field(1.1, ge=0.3, le=5.0, description="margin around the volume bounds; >1 zooms out")
    exposure: float = Field(0.0, ge=-10.0, le=10.0)
    view_transform: Literal["Standard", "Filmic", "AgX"] = "Filmic"
    preview_frames: list[Annotated[int, Field(ge=1, le=MAX_FRAMES)]] = Field(default_factory=list, max_length=64)
    volume_step_rate: float = Field(1.0, ge=0.1, le=100.0)
    volume_bounces: int = Field(1, ge=0, le=16, description="multiple scattering: clouds need a few to look white")
    light: Light = Field(default_factory=Light)


GridName = Literal["density", "flame", "temperature", "velocity", "color", "fuel", "heat", "levelset"]


class ExportSettings(Strict):
    grids: list[GridName] = Field(default_factory=lambda: ["density", "flame", "temperature", "velocity"], min_length=1)
    precision: Literal["float", "half"] = "half"
    compression: Literal["blosc", "zip", "none"] = "blosc"
    nanovdb: bool = False
    nanovdb_codec: Literal["none", "zip", "blosc"] = "zip"
    quantize: Literal["fp16", "fp8", "fp4", "fpn"] | None = None
    tolerance: float | None = Field(None, gt=0.0, le=1000.0, description="FpN: largest absolute error per voxel")


class Tunable(Strict):
    path: Annotated[str, StringConstraints(pattern=r"^[a-z_][a-z0-9_]*(\.([a-z_][a-z0-9_]*|[0-9]{1,3}))*$")]
    stage: Literal["simulation", "render"]
    min: float | None = None
    max: float | None = None
    scale: Literal["linear", "log"] = "linear"
    choices: list[str | float | int | bool] | None = Field(None, min_length=2, max_length=64)
    label: Annotated[str, StringConstraints(max_length=80)] = ""

    @model_validator(mode="after")
    def _range_or_choices(self) -> Tunable:
        if self.choices is None:
            if self.min is None or self.max is None:
                raise ValueError(f"tunable '{self.path}' needs min and max (or choices)")
            if not self.min < self.max:
                raise ValueError(f"tunable '{self.path}' has min {self.min} not below max {self.max}")
            if self.scale == "log" and self.min <= 0:
                raise ValueError(f"tunable '{self.path}' is log-scaled, so min must be > 0")
        elif self.min is not None or self.max is not None:
            raise ValueError(f"tunable '{self.path}' has both choices and a range")
        return self


class Preset(Strict):
    schema_version: int
    id: Identifier
    name: Annotated[str, StringConstraints(min_length=1, max_length=80)]
    family: Literal["pyro", "liquid", "atmospheric", "celestial"]
    kind: Identifier
    description: Text = ""
    text_target: Text = ""
    domain: Domain = Field(default_factory=Domain)
    emitters: list[Emitter] = Field(default_factory=list, min_length=1, max_length=16)
    force_fields: list[ForceField] = Field(default_factory=list, max_length=16)
    material: Material = Field(default_factory=Material)
    render: RenderRig = Field(default_factory=RenderRig)
    export: ExportSettings = Field(default_factory=ExportSettings)
    parameters: list[Tunable] = Field(default_factory=list, max_length=64)
    liquid: Liquid | None = Field(None, description="liquid-domain settings; None uses the defaults")
    scoring: ScoringSettings = Field(default_factory=ScoringSettings)

    @model_validator(mode="after")
    def _check_schema_and_paths(self) -> Preset:
        if self.schema_version != SCHEMA_VERSION:
            raise ValueError(
                f"schema_version {self.schema_version} is not supported (this VDBForge reads version {SCHEMA_VERSION})"
            )
        seen: set[str] = set()
        for tunable in self.parameters:
            if tunable.path in seen:
                raise ValueError(f"tunable '{tunable.path}' is listed twice")
            seen.add(tunable.path)
        return self


class Obstacle(Strict):
    """A collision object inside a liquid domain (basin wall, rock, paddle), optionally sliding to `move_to`."""

    shape: Literal["sphere", "cube", "cylinder", "plane", "torus"] = "cube"
    location: Vec3 = (0.0, 0.0, 0.5)
    rotation: Vec3 = (0.0, 0.0, 0.0)
    scale: Size3 = (0.5, 0.5, 0.5)
    move_to: Vec3 | None = Field(None, description="location at the end of the motion; None = static")
    move_frames: tuple[Annotated[int, Field(ge=1, le=MAX_FRAMES)], Annotated[int, Field(ge=1, le=MAX_FRAMES)]] = (
        1,
        24,
    )
    surface_distance: float = Field(0.0, ge=0.0, le=10.0, description="collision shell thickness in cells")
    subframes: int = Field(1, ge=0, le=20, description="extra collision samples per frame for fast motion")

    @model_validator(mode="after")
    def _motion_ordered(self) -> Obstacle:
        if self.move_frames[1] <= self.move_frames[0]:
            raise ValueError(f"move_frames {list(self.move_frames)} must end after they start")
        return self


class SecondaryParticles(Strict):
    """Mantaflow spray / foam / bubble particles (whitewater), exported as particle-density fog grids."""

    spray: bool = False
    foam: bool = False
    bubble: bool = False
    wavecrest_max: float = Field(8.0, ge=0.1, le=100.0, description="lower = more spray from wave crests")
    trapped_air_max: float = Field(20.0, ge=0.1, le=100.0, description="lower = more bubbles from trapped air")
    energy_max: float = Field(5.0, ge=0.1, le=100.0)
    wavecrest_sampling: int = Field(200, ge=0, le=10000, description="particles spawned per cell at most")
    trapped_air_sampling: int = Field(40, ge=0, le=10000)
    life_min: float = Field(10.0, ge=0.0, le=1000.0, description="frames")
    life_max: float = Field(25.0, ge=0.0, le=1000.0, description="frames")
    bubble_buoyancy: float = Field(0.5, ge=0.0, le=10.0)
    bubble_drag: float = Field(0.6, ge=0.0, le=10.0)
    export_grids: bool = Field(True, description="write `spray`/`foam`/`bubble` particle-density grids")
    grid_upres: int = Field(3, ge=1, le=4, description="whitewater voxels per simulation cell (per axis)")
    preview_density: float = Field(
        150.0, ge=0.0, le=10000.0, description="preview extinction (1/m) of a voxel saturated with particles"
    )

    @model_validator(mode="after")
    def _life_ordered(self) -> SecondaryParticles:
        if self.life_max < self.life_min:
            raise ValueError(f"life_max ({self.life_max}) is below life_min ({self.life_min})")
        return self


class Liquid(Strict):
    """FLIP liquid settings of a `domain.type: liquid` preset (Blender's defaults where not given)."""

    flip_ratio: float = Field(0.97, ge=0.0, le=1.0, description="1 = lively FLIP, 0 = damped PIC")
    particle_radius: float = Field(1.0, ge=0.5, le=4.0, description="in cells; larger = more volume kept")
    particle_randomness: float = Field(0.1, ge=0.0, le=10.0)
    particle_number: int = Field(2, ge=1, le=5, description="FLIP particles per cell and axis")
    mesh_upres: int = Field(2, ge=1, le=4, description="surface mesh cells per simulation cell")
    mesh_smoothen: int = Field(1, ge=0, le=20, description="positive smoothing iterations of the surface mesh")
    mesh_smoothen_neg: int = Field(1, ge=0, le=20)
    mesh_particle_radius: float = Field(2.0, ge=0.5, le=10.0, description="in cells; how far particles inflate")
    levelset_upres: int = Field(1, ge=1, le=4, description="exported level-set voxels per simulation cell")
    cfl: float = Field(2.0, ge=0.5, le=10.0, description="lower = more substeps for fast liquid")
    max_substeps: int = Field(4, ge=1, le=20)
    open_sides: bool = Field(False, description="liquid leaves through the side walls instead of bouncing")
    secondary: SecondaryParticles = Field(default_factory=SecondaryParticles)
    obstacles: list[Obstacle] = Field(default_factory=list, max_length=8)
