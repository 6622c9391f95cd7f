"""Where every VDBForge panel lives (3D viewport sidebar, VDBForge tab) and when it can draw.

A module of its own so that the sub-panel modules (score, iterate, export), which properties.py imports for their
property groups, can share it without importing main_panels.py.
"""

import bpy

CATEGORY = "VDBForge"
PARENT_ID = "VDBFORGE_PT_main"


class SidebarPanel:
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = CATEGORY

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        # Between unregistering the property and the panel (or in a window without a scene) there is nothing to draw.
        return context.scene is not None and getattr(context.scene, "vdbforge", None) is not None


class SidebarSubPanel(SidebarPanel):
    bl_parent_id = PARENT_ID
