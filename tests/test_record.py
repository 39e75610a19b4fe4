"""Records: frozen slotted classes that behave as the dataclasses they replace."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from typing import Any

import pytest

from netdoctor.model import record as record_module
from netdoctor.model.record import field, record, record_spec, replace


@record
class Point:
    """A record with required fields and defaults."""

    x: int
    y: int = 0
    tags: tuple[str, ...] = ()


@record
class Sorted:
    """A record whose ``__post_init__`` normalises a field, as ``ClusterSnapshot`` sorts its nodes."""

    items: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "items", tuple(sorted(self.items)))


@record(frozen=False, slots=False)
class Counter:
    """A mutable record with factories, as the derived facts use."""

    name: str
    seen: list[int] = field(default_factory=list)
    memo: dict[str, int] = field(default_factory=dict, repr=False)


def build_many(count: int) -> list[Point]:
    """Build more points than the shared ``__init__`` handles, so the compiled one builds the rest."""
    return [Point(number, y=number + 1) for number in range(count)]


def test_fields_in_order_with_defaults() -> None:
    point = Point(1)

    assert (point.x, point.y, point.tags) == (1, 0, ())
    assert Point(1, 2, ("a",)) == Point(x=1, y=2, tags=("a",))


def test_equality_and_hash_follow_values() -> None:
    assert Point(1, 2) == Point(1, 2)
    assert Point(1, 2) != Point(1, 3)
    assert hash(Point(1, 2)) == hash(Point(1, 2))
    assert len({Point(1, 2), Point(1, 2), Point(2, 2)}) == 2
    assert Point(1) != (1, 0, ())


def test_repr_names_fields() -> None:
    assert repr(Point(1, tags=("a",))) == "Point(x=1, y=0, tags=('a',))"
    assert repr(Counter("n")) == "Counter(name='n', seen=[])"


def test_assignment_raises_frozen_error() -> None:
    point = Point(1)

    with pytest.raises(dataclasses.FrozenInstanceError):
        point.x = 2  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del point.y
    assert point.x == 1


def test_slots_and_no_instance_dict() -> None:
    assert vars(Point)["__slots__"] == ("x", "y", "tags")
    assert not hasattr(Point(1), "__dict__")


def test_dataclasses_functions_accept_records() -> None:
    point = Point(1, 2)

    assert dataclasses.is_dataclass(point)
    assert [item.name for item in dataclasses.fields(Point)] == ["x", "y", "tags"]
    assert dataclasses.replace(point, y=5) == Point(1, 5)
    assert dataclasses.asdict(point) == {"x": 1, "y": 2, "tags": ()}
    assert getattr(Point, "__dataclass_params__").frozen  # noqa: B009
    assert not getattr(Counter, "__dataclass_params__").frozen  # noqa: B009


def test_replace_changes_named_fields() -> None:
    point = Point(1, 2, ("a",))

    assert replace(point, y=7) == Point(1, 7, ("a",))
    with pytest.raises(TypeError, match="no field"):
        replace(point, z=1)


def test_dataclass_subclass_of_record() -> None:
    @dataclasses.dataclass(frozen=True)
    class Labelled(Point):
        label: str = ""

    labelled = Labelled(1, label="a")

    assert (labelled.x, labelled.label) == (1, "a")
    assert replace(labelled, label="b") == Labelled(1, label="b")


def test_pickle_and_copy_keep_values() -> None:
    point = Point(1, 2, ("a",))

    assert pickle.loads(pickle.dumps(point)) == point
    assert copy.copy(point) == point
    assert copy.deepcopy(point) == point


def test_post_init_runs() -> None:
    assert Sorted((3, 1, 2)).items == (1, 2, 3)
    assert all(item.items == (1, 2) for item in [Sorted((2, 1)) for _ in range(record_module.COMPILE_AFTER + 5)])


def test_mutable_record_has_no_hash() -> None:
    first, second = Counter("a"), Counter("a")
    first.seen.append(1)
    first.name = "b"

    assert second.seen == []
    assert first == Counter("b", [1])
    with pytest.raises(TypeError):
        hash(first)


def test_compiled_init_matches_shared_init() -> None:
    points = build_many(record_module.COMPILE_AFTER * 2)

    assert Point.__init__.__qualname__ == "Point.__init__"
    assert points == [Point(number, number + 1) for number in range(record_module.COMPILE_AFTER * 2)]
    assert points[0] == Point(0, 1)


@pytest.mark.parametrize(
    ("arguments", "keywords", "message"),
    [
        ((), {}, "missing 1 required positional argument: 'x'"),
        ((1, 2, (), 4), {}, "takes from 2 to 4 positional arguments but 5 were given"),
        ((1,), {"x": 2}, "got multiple values for argument 'x'"),
        ((1,), {"z": 2}, "got an unexpected keyword argument 'z'"),
    ],
)
@pytest.mark.parametrize("built_before", [0, record_module.COMPILE_AFTER + 1])
def test_bad_arguments_raise_type_error(arguments: tuple[Any, ...], keywords: dict[str, Any], message: str,
                                        built_before: int) -> None:
    @record
    class Fresh:
        x: int
        y: int = 0
        tags: tuple[str, ...] = ()

    for number in range(built_before):
        Fresh(number)

    with pytest.raises(TypeError, match=message):
        Fresh(*arguments, **keywords)


def test_mutable_default_rejected() -> None:
    with pytest.raises(ValueError, match="mutable default list"):

        @record
        class Bad:
            items: list[int] = []  # noqa: RUF012


def test_required_field_after_default_rejected() -> None:
    with pytest.raises(TypeError, match="without a default follows"):

        @record
        class Bad:
            first: int = 0
            second: int  # type: ignore[misc]


def test_record_spec_lists_fields() -> None:
    spec = record_spec(Point)

    assert spec is not None
    assert spec.names == ("x", "y", "tags")
    assert spec.defaults == {"y": 0, "tags": ()}
    assert record_spec(int) is None
