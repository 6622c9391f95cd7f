"""Every panel's, menu's and list's `draw()` in the installed extension, for every built-in preset and with every
run in progress, against Blender's own RNA.

The wheel has no window, so no real UILayout exists here. Each draw gets a layout that checks every call against
`bpy.types.UILayout`'s RNA functions (method names, parameter names, icons), every `prop` against the data's RNA
properties, every `operator` against the registered operators and their properties, every `menu` and
`template_list` against the registered classes. What would raise or draw nothing in a desktop Blender fails here.
"""

from __future__ import annotations

from pathlib import Path

from .test_extension import STANDIN_SELF, run_extension_session

SCRIPT = r"""
import collections, json, sys
sys.path.insert(0, SITE)
import bpy

bpy.ops.extensions.package_install_files(filepath=ZIP, repo="user_default", enable_on_install=True)
registration = sys.modules[MODULE + ".blender_registration"]
UI = bpy.types.UILayout.bl_rna.functions
ICONS = set(UI["label"].parameters["icon"].enum_items.keys())
LAYOUT_PROPS = set(bpy.types.UILayout.bl_rna.properties.keys())
problems, calls, labels = [], collections.Counter(), set()


def problem(where, text):
    problems.append(f"{where}: {text}")


def rna_props(data):
    return set(data.bl_rna.properties.keys())


def operator_rna(where, idname):
    try:
        module, name = idname.split(".")
        return getattr(getattr(bpy.ops, module), name).get_rna_type()
    except (ValueError, KeyError, AttributeError):
        problem(where, f"no operator '{idname}'")
        return None


class OperatorProps:
    def __init__(self, where, rna):
        object.__setattr__(self, "_where", where)
        object.__setattr__(self, "_names", set(rna.properties.keys()) if rna else None)

    def __setattr__(self, name, value):
        if self._names is not None and name not in self._names:
            problem(self._where, f"operator has no property '{name}'")


class Layout:
    def __init__(self, where):
        object.__setattr__(self, "_where", where)

    def __setattr__(self, name, value):
        if name not in LAYOUT_PROPS:
            problem(self._where, f"UILayout has no attribute '{name}'")

    def __getattr__(self, method):
        if method.startswith("__") or method not in UI.keys():
            problem(self._where, f"UILayout has no method '{method}'")
            raise AttributeError(method)
        params = [p for p in UI[method].parameters if not p.is_output]
        returns = any(p.is_output for p in UI[method].parameters)

        def call(*args, **kwargs):
            calls[method] += 1
            if len(args) > len(params):
                problem(self._where, f"{method}() takes {len(params)} arguments, got {len(args)}")
            bound = dict(zip((p.identifier for p in params), args))
            for key, value in kwargs.items():
                if key not in {p.identifier for p in params}:
                    problem(self._where, f"{method}() has no parameter '{key}'")
                bound[key] = value
            missing = [p.identifier for p in params if p.is_required and p.identifier not in bound]
            if missing:
                problem(self._where, f"{method}() misses {missing}")
            return self._check(method, bound, returns)

        return call

    def _check(self, method, bound, returns):
        where = self._where
        if "icon" in bound and bound["icon"] not in ICONS:
            problem(where, f"{method}(): unknown icon '{bound['icon']}'")
        for key in ("text", "heading"):
            if key in bound and not isinstance(bound[key], str):
                problem(where, f"{method}(): {key} is {type(bound[key]).__name__}, not str")
        if method == "label":
            labels.add(bound.get("text", ""))
        if method in ("prop", "props_enum", "prop_enum", "prop_menu_enum", "prop_tabs_enum"):
            if bound["property"] not in rna_props(bound["data"]):
                problem(where, f"{method}(): {bound['data'].bl_rna.identifier} has no '{bound['property']}'")
        if method == "operator":
            return OperatorProps(where, operator_rna(where, bound["operator"]))
        if method == "menu" and not hasattr(bpy.types, bound["menu"]):
            problem(where, f"no menu '{bound['menu']}'")
        if method == "template_list":
            if not hasattr(bpy.types, bound["listtype_name"]):
                problem(where, f"no UIList '{bound['listtype_name']}'")
            for data, prop in (("dataptr", "propname"), ("active_dataptr", "active_propname")):
                if bound[prop] not in rna_props(bound[data]):
                    problem(where, f"template_list(): no '{bound[prop]}'")
            ui_list = getattr(bpy.types, bound["listtype_name"], None)
            for index, item in enumerate(getattr(bound["dataptr"], bound["propname"])):
                draw(ui_list, "draw_item", bpy.context, Layout(bound["listtype_name"]), bound["dataptr"], item, 0,
                     bound["active_dataptr"], bound["active_propname"], index)
        return Layout(where) if returns else None


def draw(cls, method, *args):
    if cls is None:
        return
    fake = Standin(cls, args[1] if method == "draw_item" else Layout(cls.__name__))
    try:
        getattr(cls, method)(fake, *args)
    except Exception as exc:
        problem(cls.__name__, f"{method}() raised {type(exc).__name__}: {exc}")


drawable = [c for c in registration.CLASSES if issubclass(c, (bpy.types.Panel, bpy.types.Menu))]
drawn = collections.Counter()


def draw_all():
    for cls in drawable:
        if issubclass(cls, bpy.types.Panel) and not cls.poll(bpy.context):
            continue
        drawn[cls.__name__] += 1
        draw(cls, "draw", bpy.context)


props = bpy.context.scene.vdbforge
presets = [item[0] for item in sys.modules[MODULE + ".panels.properties"].preset_items(props, bpy.context)]
for preset in presets:
    props.preset = preset
    draw_all()

# Everything the panels show only while something runs or after it finished.
image = bpy.data.images.new("VDBForgeDrawTest", 8, 8)
props.preset = "explosion"
props.running, props.status_text, props.preview_image, props.contact_sheet = True, "frame 3/8", image.name, "/x.png"
it = props.iterate
it.running, it.status_text, it.best_image, it.run_dir = True, "bake 2/8", image.name, "/tmp/run"
it.model_building, it.model_status_text = True, "dataset 3/8"
ex = props.export
ex.running, ex.status_text, ex.nanovdb, ex.quantize, ex.use_frame_range = True, "frame 1/4", True, "fpn", True
score = props.score
score.references.add().filepath = "/refs/one.png"
score.summary, score.skipped = "objective 0.5\nlpips 0.4", "clip: no weights"
row = score.results.add()
row.frame, row.angle, row.score, row.best_for = 8, 1, 0.5, "one.png"
draw_all()
props.running = it.running = it.model_building = ex.running = False
draw_all()

print(PREFIX + json.dumps({"problems": problems, "calls": calls, "labels": sorted(labels), "drawn": drawn,
                           "presets": presets, "drawable": [c.__name__ for c in drawable]}))
"""


def test_every_panel_draws_against_blenders_rna(extension_zip: Path, tmp_path: Path):
    facts, _ = run_extension_session(extension_zip, tmp_path, STANDIN_SELF + SCRIPT)
    assert facts["problems"] == []
    assert len(facts["presets"]) >= 12
    draws = len(facts["presets"]) + 2
    assert facts["drawn"] == {name: draws for name in facts["drawable"]}, "every panel polls true and draws"
    assert "VDBFORGE_MT_presets" in facts["drawable"] and facts["calls"]["props_enum"] == draws
    for method in ("prop", "operator", "label", "template_list", "template_icon", "box", "row", "column"):
        assert facts["calls"][method] > 0, method
    for text in (
        "Esc cancels and keeps the baked frames",
        "Esc cancels and keeps the finished candidates",
        "Esc cancels; nothing is written until the export finishes",
        "best: one.png",
        "one.png",
        "frame 8 angle 1",
        "frame 3/8",
    ):
        assert text in facts["labels"], text
    # This Blender's Python has no torch (a real Blender's has not either): the model box says so and stops.
    assert any(label.startswith("Inverse models need torch") for label in facts["labels"])
