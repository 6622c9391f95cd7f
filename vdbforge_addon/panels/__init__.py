"""Sidebar UI: the scene property group and the VDBForge panels, in registration order."""

from . import main_panels, properties

classes = (*properties.classes, *main_panels.classes)
