"""Parent, depth, assignee and move rules, with property tests against a brute-force oracle."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import FieldError
from domain.task_tree import (
    MAX_DEPTH,
    TaskNode,
    assignee_errors,
    parent_errors,
    plan_move,
    subtree_height,
)

P, Q = "p", "q"


def chain(length: int, project: str = P) -> list[TaskNode]:
    """t1 <- t2 <- ... (t1 top-level, each the parent of the next)."""
    nodes = [TaskNode("t1", project, None)]
    for i in range(2, length + 1):
        nodes.append(TaskNode(f"t{i}", project, f"t{i - 1}"))
    return nodes


def ancestors_of(nodes: dict[str, TaskNode], task_id: str) -> list[str]:
    out, node = [], nodes[task_id]
    while node.parent_id is not None:
        out.append(node.parent_id)
        node = nodes[node.parent_id]
    return out


def fields(errors: Sequence[FieldError]) -> list[str]:
    return [e.field for e in errors]


def test_parent_must_exist_live_in_the_same_project() -> None:
    other = TaskNode("x", Q, None)
    assert fields(parent_errors(task_id=None, project_id=P, parent=None, parent_ancestors=[])) == [
        "parent_id"
    ]
    wrong = parent_errors(task_id=None, project_id=P, parent=other, parent_ancestors=[])
    missing = parent_errors(task_id=None, project_id=P, parent=None, parent_ancestors=[])
    assert wrong == missing  # another project's task answers as an unknown one


def test_not_itself_nor_a_descendant() -> None:
    nodes = {n.id: n for n in chain(3)}
    assert fields(
        parent_errors(task_id="t1", project_id=P, parent=nodes["t1"], parent_ancestors=[])
    ) == ["parent_id"]
    errors = parent_errors(
        task_id="t1", project_id=P, parent=nodes["t3"], parent_ancestors=ancestors_of(nodes, "t3")
    )
    assert fields(errors) == ["parent_id"]
    assert "subtasks" in errors[0].message


def test_depth_limit_top_level_is_level_one() -> None:
    nodes = {n.id: n for n in chain(MAX_DEPTH)}
    deepest_ok = f"t{MAX_DEPTH - 1}"
    assert (
        parent_errors(
            task_id=None,
            project_id=P,
            parent=nodes[deepest_ok],
            parent_ancestors=ancestors_of(nodes, deepest_ok),
        )
        == []
    )
    too_deep = f"t{MAX_DEPTH}"
    errors = parent_errors(
        task_id=None,
        project_id=P,
        parent=nodes[too_deep],
        parent_ancestors=ancestors_of(nodes, too_deep),
    )
    assert fields(errors) == ["parent_id"]


def test_subtree_height() -> None:
    nodes = chain(4)
    assert subtree_height("t1", nodes) == 4
    assert subtree_height("t3", nodes) == 2
    assert subtree_height("t4", nodes) == 1
    assert subtree_height("alone", []) == 1


def test_assignee_must_be_a_member() -> None:
    assert assignee_errors(None, set()) == []
    assert assignee_errors("u1", {"u1", "u2"}) == []
    assert fields(assignee_errors("u3", {"u1"})) == ["assignee_id"]


def test_move_names_both_fields_and_clears_descendant_assignees() -> None:
    root = TaskNode("r", P, "old-parent", "u-root")
    child = TaskNode("c", P, "r", "u-gone")
    kept = TaskNode("k", P, "c", "u-stays")
    plan, errors = plan_move(
        task=root,
        subtree=[root, child, kept],
        new_project_id=Q,
        new_parent=None,
        new_parent_id="old-parent",
        new_parent_ancestors=[],
        new_assignee_id="u-root",
        target_member_ids={"u-stays"},
    )
    assert fields(errors) == ["parent_id", "assignee_id"]
    assert plan.task_ids == ("r", "c", "k")
    assert plan.clear_assignee_of == ("c",)


def test_move_to_a_parent_in_the_new_project() -> None:
    root, child = TaskNode("r", P, None), TaskNode("c", P, "r")
    target = {n.id: n for n in chain(3, project=Q)}
    ok, errors = plan_move(
        task=root,
        subtree=[root, child],
        new_project_id=Q,
        new_parent=target["t3"],
        new_parent_id="t3",
        new_parent_ancestors=ancestors_of(target, "t3"),
        new_assignee_id=None,
        target_member_ids=set(),
    )
    assert errors == []
    assert ok.task_ids == ("r", "c")
    # Level 3 parent + a subtree 2 tall = 5 levels: allowed; one more is not.
    deeper = {n.id: n for n in chain(4, project=Q)}
    _, errors = plan_move(
        task=root,
        subtree=[root, child],
        new_project_id=Q,
        new_parent=deeper["t4"],
        new_parent_id="t4",
        new_parent_ancestors=ancestors_of(deeper, "t4"),
        new_assignee_id=None,
        target_member_ids=set(),
    )
    assert fields(errors) == ["parent_id"]


@st.composite
def forests(draw: st.DrawFn) -> dict[str, TaskNode]:
    """A random valid forest of up to 14 tasks in one project, none deeper than MAX_DEPTH (each
    parent made earlier)."""
    size = draw(st.integers(min_value=1, max_value=14))
    nodes: dict[str, TaskNode] = {}
    for i in range(size):
        room = sorted(n for n in nodes if depth(nodes, n) < MAX_DEPTH)
        parent = draw(st.one_of(st.none(), st.sampled_from(room))) if room else None
        nodes[f"n{i:02d}"] = TaskNode(f"n{i:02d}", P, parent)
    return nodes


def depth(nodes: dict[str, TaskNode], task_id: str) -> int:
    seen, level, node = set(), 1, nodes[task_id]
    while node.parent_id is not None:
        if node.id in seen:
            return 10**6  # a cycle: infinitely deep
        seen.add(node.id)
        node, level = nodes[node.parent_id], level + 1
    return level


@settings(max_examples=300, deadline=None)
@given(data=st.data(), nodes=forests())
def test_parent_rule_matches_the_oracle(data: st.DataObject, nodes: dict[str, TaskNode]) -> None:
    """Re-parenting any task under any task is allowed exactly when the resulting forest has no
    cycle and no task deeper than MAX_DEPTH."""
    ids = sorted(nodes)
    task_id = data.draw(st.sampled_from(ids))
    parent_id = data.draw(st.sampled_from(ids))
    subtree = [n for n in nodes.values() if task_id in [n.id, *ancestors_of(nodes, n.id)]]
    errors = parent_errors(
        task_id=task_id,
        project_id=P,
        parent=nodes[parent_id],
        parent_ancestors=ancestors_of(nodes, parent_id),
        height=subtree_height(task_id, subtree),
    )
    after = dict(nodes)
    after[task_id] = TaskNode(task_id, P, parent_id)
    cycle = parent_id == task_id or task_id in ancestors_of(nodes, parent_id)
    valid = not cycle and all(depth(after, n) <= MAX_DEPTH for n in after)
    assert (errors == []) == valid, (nodes, task_id, parent_id, errors)
    assert all(e.field == "parent_id" for e in errors)


@settings(max_examples=200, deadline=None)
@given(nodes=forests(), data=st.data())
def test_subtree_height_matches_depths(nodes: dict[str, TaskNode], data: st.DataObject) -> None:
    task_id = data.draw(st.sampled_from(sorted(nodes)))
    below = [n for n in nodes.values() if task_id in [n.id, *ancestors_of(nodes, n.id)]]
    expected = max(depth(nodes, n.id) for n in below) - depth(nodes, task_id) + 1
    # Unrelated rows in the input change nothing.
    assert subtree_height(task_id, list(nodes.values())) == expected
    assert subtree_height(task_id, below) == expected
