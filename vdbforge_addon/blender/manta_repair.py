"""Make Mantaflow bakes work in the pip `bpy` module build, and let a process that baked exit cleanly.

Mantaflow's types have `object` as their only Python base: its registry gives each type the methods and getsets of
its C++ ancestors by copying the ancestors' definitions into the type's own tables, inside `Pb::setup()`. Desktop
Blender creates the `manta` module the first time a fluid is initialised, after that copy. The module build creates
it at `import bpy`, before the copy, so subclasses miss every inherited attribute and the first bake fails with e.g.
`'LevelsetGrid' object has no attribute 'setConst'` and then aborts the process.

The repair does what the registry would have done: for each type, walk its ancestors nearest first, read their
`PyMethodDef` / `PyGetSetDef` arrays (`PyType_GetSlot`), create descriptors bound to the type itself
(`PyDescr_NewMethod` / `PyDescr_NewGetSet`, exactly what `PyType_Ready` makes for a type's own entries), add the
missing ones to the type's dict and invalidate the attribute cache (`PyType_Modified`). The definitions are the
registry's own arrays, which live as long as the process, so the new descriptors never dangle.
"""

from __future__ import annotations

import atexit
import ctypes
import gc
import sys
import types

from .manta_classes import MANTA_BASES, MANTA_OTHER_TYPES, ancestors
from .runtime import is_module_mode

# Slot numbers from CPython's stable ABI (`Include/typeslots.h`); they never change between versions.
_PY_TP_METHODS = 64
_PY_TP_GETSET = 73


class _PyMethodDef(ctypes.Structure):
    _fields_ = [
        ("ml_name", ctypes.c_char_p),
        ("ml_meth", ctypes.c_void_p),
        ("ml_flags", ctypes.c_int),
        ("ml_doc", ctypes.c_char_p),
    ]


class _PyGetSetDef(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("get", ctypes.c_void_p),
        ("set", ctypes.c_void_p),
        ("doc", ctypes.c_char_p),
        ("closure", ctypes.c_void_p),
    ]


# Private prototypes rather than `ctypes.pythonapi.X.argtypes = ...`, which would change a process-wide object that
# other code may have configured differently. PYFUNCTYPE holds the GIL and raises any Python error the call sets.
_api = ctypes.pythonapi
_type_get_slot = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.py_object, ctypes.c_int)(("PyType_GetSlot", _api))
_descr_new_method = ctypes.PYFUNCTYPE(ctypes.py_object, ctypes.py_object, ctypes.c_void_p)(("PyDescr_NewMethod", _api))
_descr_new_getset = ctypes.PYFUNCTYPE(ctypes.py_object, ctypes.py_object, ctypes.c_void_p)(("PyDescr_NewGetSet", _api))
_type_modified = ctypes.PYFUNCTYPE(None, ctypes.py_object)(("PyType_Modified", _api))

_DESCRIPTOR_TYPES = (types.MethodDescriptorType, types.GetSetDescriptorType)

_totals = {"classes_patched": 0, "attributes_added": 0}
_clean_exit_installed = False


def manta_module() -> types.ModuleType:
    """The already-created `manta` module. Never imports it: importing it in desktop Blender before the first fluid
    initialisation would create it incomplete, which is the very bug repaired here."""
    module = sys.modules.get("manta")
    if module is None:
        raise RuntimeError(
            "the Mantaflow module 'manta' is not loaded; the bpy module build creates it at 'import bpy', desktop "
            "Blender only at the first fluid bake"
        )
    return module


def manta_classes(module: types.ModuleType | None = None) -> dict[str, type]:
    """Registry classes of the module by Python type name; raises if the module holds a class the table lacks."""
    module = manta_module() if module is None else module
    found: dict[str, type] = {}
    for alias, value in vars(module).items():
        if not isinstance(value, type):
            continue
        name = value.__name__
        if name in MANTA_OTHER_TYPES:
            continue
        if name not in MANTA_BASES:
            # An unknown class would silently miss its inherited methods and break a bake much later.
            raise RuntimeError(
                f"Mantaflow class {name!r} (module attribute {alias!r}) is not in the hierarchy table of "
                "vdbforge_addon/blender/manta_classes.py; add it with its base class before baking with this bpy"
            )
        if found.setdefault(name, value) is not value:
            raise RuntimeError(f"two different Mantaflow classes are named {name!r}")
    for name in found:
        for base in ancestors(name):
            if base not in found:
                raise RuntimeError(f"Mantaflow class {name!r} has base {base!r} in the table, but the module lacks it")
    return found


def _definitions(cls: type, slot: int, struct: type[ctypes.Structure]) -> list[tuple[str, int]]:
    """(name, address) of each entry of a type's NULL-terminated method or getset array."""
    address = _type_get_slot(cls, slot)
    entries: list[tuple[str, int]] = []
    if not address:
        return entries
    size = ctypes.sizeof(struct)
    name_field = struct._fields_[0][0]
    while True:
        raw_name = getattr(struct.from_address(address), name_field)
        if raw_name is None:
            return entries
        entries.append((raw_name.decode("utf-8"), address))
        address += size


def _type_dict(cls: type) -> dict:
    """The dict behind `cls.__dict__`: a mapping proxy's only GC referent is the mapping it wraps."""
    proxy = cls.__dict__
    referents = [obj for obj in gc.get_referents(proxy) if type(obj) is dict]
    if len(referents) != 1 or referents[0].keys() != proxy.keys():
        raise RuntimeError(f"cannot reach the dict of Mantaflow class {cls.__name__!r} behind its mappingproxy")
    return referents[0]


def _copy_inherited(classes: dict[str, type]) -> tuple[int, int]:
    """Give every class its ancestors' methods and getsets; returns (classes patched, attributes added)."""
    patched = added = 0
    for name, cls in classes.items():
        type_dict = None
        count = 0
        for base in ancestors(name):
            base_cls = classes[base]
            # The registry keeps a subclass's own method over an inherited one of the same name (addMethod skips
            # duplicates), and the nearest ancestor's over a farther one; adding only missing names does the same.
            for attr, address in _definitions(base_cls, _PY_TP_METHODS, _PyMethodDef):
                if attr in cls.__dict__:
                    continue
                type_dict = _type_dict(cls) if type_dict is None else type_dict
                type_dict[attr] = _descr_new_method(cls, address)
                count += 1
            for attr, address in _definitions(base_cls, _PY_TP_GETSET, _PyGetSetDef):
                if attr in cls.__dict__:
                    continue
                type_dict = _type_dict(cls) if type_dict is None else type_dict
                type_dict[attr] = _descr_new_getset(cls, address)
                count += 1
        if count:
            # Attribute lookups are cached per type version; without this a cached miss could survive the repair.
            _type_modified(cls)
            patched += 1
            added += count
    return patched, added


def mantaflow_gaps() -> list[str]:
    """Inherited attributes a Mantaflow class cannot reach, as 'Class.attr (from Ancestor)'; empty when complete.

    An attribute counts as reachable only if lookup on the class finds a descriptor whose owner the class is a
    (Python) subclass of, i.e. one that accepts the class's instances.
    """
    classes = manta_classes()
    gaps: list[str] = []
    for name, cls in classes.items():
        seen: set[str] = set()
        for base in ancestors(name):
            for attr, value in vars(classes[base]).items():
                if attr.startswith("__") or attr in seen or not isinstance(value, _DESCRIPTOR_TYPES):
                    continue
                seen.add(attr)
                found = next((klass.__dict__[attr] for klass in cls.__mro__ if attr in klass.__dict__), None)
                if not isinstance(found, _DESCRIPTOR_TYPES) or not issubclass(cls, found.__objclass__):
                    gaps.append(f"{name}.{attr} (from {base})")
    return gaps


def ensure_mantaflow_ready() -> dict:
    """Repair the `manta` module when running as the bpy module build; a no-op inside a real Blender.

    Idempotent: later calls add nothing and report the totals of all calls. Returns
    {applied, classes_patched, attributes_added, gaps_after}; `applied` is False (and gaps_after None) in a real
    Blender, where the module is left untouched. Raises RuntimeError if the module has a class the table does not
    know, or if any gap remains.
    """
    if not is_module_mode():
        return {"applied": False, "classes_patched": 0, "attributes_added": 0, "gaps_after": None}
    if _totals["classes_patched"]:
        # Once a fluid has been initialised, Mantaflow has replaced the method tables the repair reads; reading them
        # again would walk freed memory. The descriptors added the first time stay valid for the whole process, and
        # only the class table is checked again (it reads names, not method tables).
        manta_classes()
        return {"applied": True, **_totals, "gaps_after": 0}
    patched, added = _copy_inherited(manta_classes())
    _totals["classes_patched"] += patched
    _totals["attributes_added"] += added
    gaps = mantaflow_gaps()
    if gaps:
        raise RuntimeError(f"Mantaflow repair left {len(gaps)} inherited attributes unreachable, e.g. {gaps[:5]}")
    return {"applied": True, **_totals, "gaps_after": 0}


def _reset_before_exit() -> None:
    import bpy

    # Interpreter shutdown frees Mantaflow's solver object before its grids and aborts (rc 134); unloading the scene
    # first frees the fluid modifiers in the right order while Python is still whole.
    bpy.ops.wm.read_factory_settings(use_empty=True)


def install_clean_exit() -> bool:
    """Register (once) the exit hook that keeps a process that baked from aborting at shutdown.

    Only in the module build; a real Blender frees its data before Python and needs no hook. Returns whether the
    hook is installed.
    """
    global _clean_exit_installed
    if not is_module_mode():
        return False
    if not _clean_exit_installed:
        # bpy registered its own exit handler at import; atexit runs handlers last-in first-out, so this one runs
        # before bpy tears Blender down.
        atexit.register(_reset_before_exit)
        _clean_exit_installed = True
    return True
