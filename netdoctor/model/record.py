"""Records: frozen, slotted dataclasses that cost little to define.

``@record`` gives a class with annotated fields what
``@dataclass(frozen=True, slots=True)`` gives it: an ``__init__`` over the
fields in order (calling ``__post_init__`` if the class has one), ``==``,
``hash()`` and ``repr()`` over the field values, ``__slots__``, and assignment
that raises ``dataclasses.FrozenInstanceError``. ``@record(frozen=False)`` and
``@record(slots=False)`` match the dataclass options of the same names.

The standard decorator compiles up to six methods per class while the class is
defined, and imports ``inspect``, which made defining netdoctor's classes cost
more than the rest of ``netdoctor check --json`` on a small snapshot. A record
shares its methods with every record, and compiles an ``__init__`` of its own
only once it has built many instances.

Records remain dataclasses for the standard library: ``dataclasses.fields``,
``replace``, ``asdict`` and ``is_dataclass`` work on them, and a dataclass can
subclass one. Those functions read ``__dataclass_fields__``, which a record
computes with the ``dataclasses`` module on first access, so a run that never
reads it never imports that module. :func:`replace` here does the same job
without it.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import Any, TypeVar, dataclass_transform, overload

T = TypeVar("T")

#: The default of a field that has none.
_MISSING: Any = type("_Missing", (), {"__repr__": lambda self: "MISSING"})()


class _FieldSpec:
    """The value of :func:`field`: a default or a default factory, and whether ``repr`` shows the field."""

    __slots__ = ("default", "default_factory", "repr")

    def __init__(self, default: Any, default_factory: Any, repr: bool) -> None:
        self.default = default
        self.default_factory = default_factory
        self.repr = repr


def field(*, default: Any = _MISSING, default_factory: Callable[[], Any] = _MISSING, repr: bool = True) -> Any:
    """Describe a record field with a default factory, or one that ``repr`` leaves out, as ``dataclasses.field``."""
    if default is not _MISSING and default_factory is not _MISSING:
        raise ValueError("cannot specify both default and default_factory")
    return _FieldSpec(default, default_factory, repr)


class RecordSpec:
    """The fields of a record class, in order, with their defaults."""

    __slots__ = ("annotations", "custom_init", "defaults", "factories", "frozen", "hidden", "names", "positions",
                 "post_init", "required")

    def __init__(self, names: tuple[str, ...], annotations: dict[str, Any], defaults: dict[str, Any],
                 factories: dict[str, Callable[[], Any]], hidden: frozenset[str], frozen: bool) -> None:
        self.names = names
        #: Field name -> its position in ``__init__``.
        self.positions = {name: index for index, name in enumerate(names)}
        self.annotations = annotations
        #: Field name -> default value, for the fields that have one.
        self.defaults = defaults
        #: Field name -> default factory, for the fields that have one.
        self.factories = factories
        #: How many fields, at the start, have no default and no factory.
        self.required = sum(1 for name in names if name not in defaults and name not in factories)
        #: Fields that ``repr`` leaves out.
        self.hidden = hidden
        self.frozen = frozen
        #: Whether ``__init__`` ends by calling the class's ``__post_init__``.
        self.post_init = False
        #: Whether the class defines its own ``__init__``, which replaces the one that sets the fields.
        self.custom_init = False


@overload
def record(cls: type[T], /) -> type[T]: ...


@overload
def record(*, frozen: bool = True, slots: bool = True) -> Callable[[type[T]], type[T]]: ...


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def record(cls: type[T] | None = None, /, *, frozen: bool = True, slots: bool = True) -> Any:
    """Make a class a record: a frozen dataclass with ``__slots__`` unless ``frozen`` or ``slots`` is False."""

    def wrap(cls: type[T]) -> type[T]:
        return _make_record(cls, frozen, slots)

    return wrap if cls is None else wrap(cls)


def record_spec(cls: type) -> RecordSpec | None:
    """Return the fields of a record class, or of the record class it derives from; None for any other class."""
    spec: RecordSpec | None = getattr(cls, "__record__", None)
    return spec


def replace(obj: T, /, **changes: Any) -> T:
    """Return a copy of a record with some fields changed, as ``dataclasses.replace`` does."""
    cls = type(obj)
    spec: RecordSpec | None = cls.__dict__.get("__record__")
    if spec is None:  # a dataclass that subclasses a record has fields of its own
        import dataclasses

        return dataclasses.replace(obj, **changes)  # type: ignore[type-var]
    unknown = changes.keys() - set(spec.names)
    if unknown:
        raise TypeError(f"{cls.__qualname__} has no field(s) {', '.join(sorted(unknown))}")
    values = {name: changes[name] if name in changes else getattr(obj, name) for name in spec.names}
    return cls(**values)


def _make_record(cls: type[T], frozen: bool, slots: bool) -> type[T]:
    if any(hasattr(base, "__record__") for base in cls.__mro__[1:]):
        raise TypeError(f"{cls.__qualname__}: a record cannot subclass another record")
    namespace = dict(cls.__dict__)
    annotations: dict[str, Any] = namespace.get("__annotations__", {})
    names: list[str] = []
    defaults: dict[str, Any] = {}
    factories: dict[str, Callable[[], Any]] = {}
    hidden: set[str] = set()
    for name, annotation in annotations.items():
        if _is_class_variable(annotation):
            continue
        value = namespace.get(name, _MISSING)
        if isinstance(value, _FieldSpec):
            if not value.repr:
                hidden.add(name)
            if value.default_factory is not _MISSING:
                factories[name] = value.default_factory
            value = value.default
        if value is not _MISSING:
            if type(value).__hash__ is None:
                raise ValueError(f"{cls.__qualname__}.{name}: mutable default {type(value).__name__} is not "
                                 "allowed; use field(default_factory=...)")
            defaults[name] = value
        elif name not in factories and (defaults or factories):
            raise TypeError(f"{cls.__qualname__}: field {name!r} without a default follows a field with one")
        names.append(name)
    spec = RecordSpec(tuple(names), {name: annotations[name] for name in names}, defaults, factories,
                      frozenset(hidden), frozen)
    spec.post_init = hasattr(cls, "__post_init__")

    if slots:
        # A slot cannot share its name with a class attribute, so the defaults stay in the spec only,
        # and the class is created again with __slots__, as dataclasses does.
        if "__slots__" in namespace:
            raise TypeError(f"{cls.__qualname__} already specifies __slots__")
        for name in names:
            namespace.pop(name, None)
        namespace["__slots__"] = spec.names
        namespace.pop("__dict__", None)
        namespace.pop("__weakref__", None)
        qualname = cls.__qualname__
        metaclass: Any = type(cls)
        cls = metaclass(cls.__name__, cls.__bases__, namespace)
        cls.__qualname__ = qualname
    else:
        # As with dataclasses, a plain default stays a class attribute and a field() is replaced by its default.
        for name in names:
            if isinstance(namespace.get(name), _FieldSpec):
                if name in defaults:
                    setattr(cls, name, defaults[name])
                else:
                    delattr(cls, name)
    _install_methods(cls, spec, namespace)
    return cls


def _install_methods(cls: type, spec: RecordSpec, namespace: dict[str, Any]) -> None:
    """Set the record's methods and attributes; the methods that the class defines itself stay."""
    names = spec.names
    values: Callable[[Any], Any]
    if not names:
        values = _no_values
    elif len(names) == 1:
        values = _single_value(attrgetter(names[0]))
    else:
        values = attrgetter(*names)
    # Python sets __hash__ to None in a class body that defines __eq__ alone, which is no explicit hash.
    explicit_hash = namespace.get("__hash__") is not None or ("__hash__" in namespace and "__eq__" not in namespace)

    methods: dict[str, Any] = {"__init__": _lazy_init(cls, spec), "__repr__": _record_repr, "__eq__": _record_eq,
                               "__match_args__": names}
    if spec.frozen:
        for name in ("__setattr__", "__delattr__"):
            if name in namespace:
                raise TypeError(f"cannot overwrite attribute {name} in frozen record {cls.__qualname__}")
        methods.update(__setattr__=_frozen_setattr, __delattr__=_frozen_delattr, __getstate__=_record_getstate,
                       __setstate__=_record_setstate)
    for name, value in methods.items():
        if name not in namespace:
            setattr(cls, name, value)
    if not explicit_hash:
        # As for a dataclass: a frozen record hashes its field values, and a mutable one has no hash.
        cls.__hash__ = _record_hash if spec.frozen else None  # type: ignore[assignment]

    spec.custom_init = "__init__" in namespace
    cls.__record__ = spec  # type: ignore[attr-defined]
    cls.__record_values__ = staticmethod(values)  # type: ignore[attr-defined]
    cls.__dataclass_fields__ = _DataclassAttribute(cls, "__dataclass_fields__")  # type: ignore[attr-defined]
    cls.__dataclass_params__ = _DataclassAttribute(cls, "__dataclass_params__")  # type: ignore[attr-defined]


def _no_values(obj: Any) -> tuple[Any, ...]:
    return ()


def _single_value(getter: Callable[[Any], Any]) -> Callable[[Any], tuple[Any, ...]]:
    def values(obj: Any) -> tuple[Any, ...]:
        return (getter(obj),)

    return values


def _is_class_variable(annotation: Any) -> bool:
    if isinstance(annotation, str):
        return annotation.startswith(("ClassVar", "typing.ClassVar"))
    import typing

    return annotation is typing.ClassVar or typing.get_origin(annotation) is typing.ClassVar


#: How many instances of a record class the shared ``__init__`` builds before the class's own is compiled.
#: Compiling one took about 90 µs and saves about 1.1 µs per instance (8 fields, CPython 3.11 on a 2-vCPU
#: VM), so a class with few instances never pays for it, and one with many soon runs the faster code.
COMPILE_AFTER = 64


def _lazy_init(cls: type, spec: RecordSpec) -> Callable[..., None]:
    """Return the ``__init__`` of a new record class.

    It builds the first instances with :func:`_shared_init`, then compiles the
    class's own ``__init__``, installs it and calls it. Arguments that do not
    fit the fields go to the compiled one too, so the ``TypeError`` reads as
    Python's own.
    """
    calls = 0

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        nonlocal calls
        calls += 1
        if calls <= COMPILE_AFTER and _shared_init(spec, self, args, kwargs):
            return
        init = _compile_init(cls)
        type.__setattr__(cls, "__init__", init)
        init(self, *args, **kwargs)

    return __init__


def _shared_init(spec: RecordSpec, self: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """Set the fields from the arguments; return False, having set nothing, when they do not fit the fields."""
    names = spec.names
    given = len(args)
    if given > len(names):
        return False
    positions = spec.positions
    for name in kwargs:
        if positions.get(name, -1) < given:
            return False
    # Fields without a default come first, as in a dataclass.
    for name in names[given:spec.required]:
        if name not in kwargs:
            return False

    assign = object.__setattr__ if spec.frozen else setattr
    for name, value in zip(names, args):
        assign(self, name, value)
    defaults = spec.defaults
    for name in names[given:]:
        if name in kwargs:
            assign(self, name, kwargs[name])
        elif name in defaults:
            assign(self, name, defaults[name])
        else:
            assign(self, name, spec.factories[name]())
    if spec.post_init:
        self.__post_init__()
    return True


def _compile_init(cls: type) -> Callable[..., None]:
    """Compile ``__init__`` for a record, as ``dataclasses`` would write it."""
    spec: RecordSpec = cls.__dict__["__record__"]
    namespace: dict[str, Any] = {"_set": object.__setattr__, "_FACTORY": _MISSING}
    parameters: list[str] = []
    lines: list[str] = []
    for name in spec.names:
        value = name
        if name in spec.factories:
            namespace[f"_factory_{name}"] = spec.factories[name]
            parameters.append(f"{name}=_FACTORY")
            value = f"_factory_{name}() if {name} is _FACTORY else {name}"
        elif name in spec.defaults:
            namespace[f"_default_{name}"] = spec.defaults[name]
            parameters.append(f"{name}=_default_{name}")
        else:
            parameters.append(name)
        lines.append(f"_set(self, {name!r}, {value})" if spec.frozen else f"self.{name} = {value}")
    if spec.post_init:
        lines.append("self.__post_init__()")
    body = "\n    ".join(lines or ["pass"])
    # Generated source, as dataclasses writes it: the names come from the class's own annotations.
    exec(f"def __init__(self, {', '.join(parameters)}):\n    {body}\n", namespace)  # noqa: S102
    init: Callable[..., None] = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    return init


def _record_repr(self: Any) -> str:
    spec: RecordSpec = self.__record__
    fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in spec.names if name not in spec.hidden)
    return f"{type(self).__qualname__}({fields})"


def _record_eq(self: Any, other: Any) -> Any:
    if other.__class__ is self.__class__:
        values = self.__record_values__
        return values(self) == values(other)
    return NotImplemented


def _record_hash(self: Any) -> int:
    return hash(self.__record_values__(self))


def _frozen_setattr(self: Any, name: str, value: Any) -> None:
    from dataclasses import FrozenInstanceError

    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _frozen_delattr(self: Any, name: str) -> None:
    from dataclasses import FrozenInstanceError

    raise FrozenInstanceError(f"cannot delete field {name!r}")


def _record_getstate(self: Any) -> list[Any]:
    return [getattr(self, name) for name in self.__record__.names]


def _record_setstate(self: Any, state: list[Any]) -> None:
    for name, value in zip(self.__record__.names, state):
        object.__setattr__(self, name, value)


class _DataclassAttribute:
    """``__dataclass_fields__`` or ``__dataclass_params__`` of a record, computed on first access.

    Both come from the ``dataclasses`` module applied to a stand-in class with the
    record's fields and defaults, so they are what ``@dataclass`` would have set.
    """

    def __init__(self, owner: type, name: str) -> None:
        self.owner = owner
        self.name = name

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        import dataclasses

        cls = self.owner
        spec: RecordSpec = cls.__dict__["__record__"]
        namespace: dict[str, Any] = {"__annotations__": dict(spec.annotations), "__module__": cls.__module__,
                                     "__qualname__": cls.__qualname__}
        missing: Any = dataclasses.MISSING
        for name in spec.names:
            if name in spec.defaults or name in spec.factories or name in spec.hidden:
                namespace[name] = dataclasses.field(
                    default=spec.defaults.get(name, missing),
                    default_factory=spec.factories.get(name, missing),
                    repr=name not in spec.hidden,
                )
        stand_in: Any = dataclasses.dataclass(frozen=spec.frozen)(type(cls.__name__, (), namespace))
        fields = stand_in.__dataclass_fields__
        params = stand_in.__dataclass_params__
        type.__setattr__(cls, "__dataclass_fields__", fields)
        type.__setattr__(cls, "__dataclass_params__", params)
        return params if self.name == "__dataclass_params__" else fields
