"""The one image data-block the Preview panel shows: the contact sheet of the last preview render."""

import bpy

PREVIEW_IMAGE = "VDBForge Preview"


def load_preview(props: bpy.types.PropertyGroup, path: str) -> None:
    """Load (or reload) the contact sheet into one image data-block the Preview panel shows."""
    props.contact_sheet = path
    image = bpy.data.images.get(PREVIEW_IMAGE)
    if image is None:
        image = bpy.data.images.load(path, check_existing=False)
        image.name = PREVIEW_IMAGE
    else:
        image.filepath = path
        image.reload()
    props.preview_image = image.name


def remove_preview_image() -> None:
    """Unregister removes the image it loaded, so disabling the extension leaves the file as it was."""
    image = bpy.data.images.get(PREVIEW_IMAGE)
    if image is not None:
        bpy.data.images.remove(image)
