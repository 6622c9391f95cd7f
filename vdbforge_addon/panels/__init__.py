"""Sidebar UI: the scene property group and the VDBForge panels, in registration order."""

from . import export_panel, iterate_panel, main_panels, properties, score_panel

# Property groups that the scene group points to are registered before it.
classes = (
    *export_panel.property_classes,
    *score_panel.property_classes,
    *iterate_panel.property_classes,
    *properties.classes,
    score_panel.VDBFORGE_UL_references,
    *main_panels.classes,
)
