"""The image data-blocks the panels show: the last preview's contact sheet and the best match's preview."""

import bpy

PREVIEW_IMAGE = "VDBForge Preview"
BEST_IMAGE = "VDBForge Best"


def show_image(name: str, path: str) -> str:
    """Load (or reload) `path` into the image data-block `name`; returns the data-block's name."""
    image = bpy.data.images.get(name)
    if image is None:
        image = bpy.data.images.load(path, check_existing=False)
        image.name = name
    else:
        image.filepath = path
        image.reload()
    return image.name


def load_preview(props: bpy.types.PropertyGroup, path: str) -> None:
    """Load (or reload) the contact sheet into one image data-block the Preview panel shows."""
    props.contact_sheet = path
    props.preview_image = show_image(PREVIEW_IMAGE, path)


def remove_preview_image() -> None:
    """Unregister removes the images it loaded, so disabling the extension leaves the file as it was."""
    for name in (PREVIEW_IMAGE, BEST_IMAGE):
        image = bpy.data.images.get(name)
        if image is not None:
            bpy.data.images.remove(image)
