"""The step graph: what each step waits for (its DependsOn, the steps whose properties its
arguments read, and the Condition step whose branch it is in), checked for cycles, and which
steps are ready given the others' states."""

from __future__ import annotations

from collections.abc import Mapping

from localproc.errors import ValidationException
from localproc.pipeline.definition import Definition, Step
from localproc.pipeline.expressions import step_references


def dependencies(step: Step) -> set[str]:
    arguments = {k: v for k, v in step.arguments.items() if k not in ("IfSteps", "ElseSteps")}
    found = set(step.depends_on) | step_references(arguments)
    if step.branch is not None:
        found.add(step.branch[0])
    found.discard(step.name)
    return found


def graph(definition: Definition) -> dict[str, set[str]]:
    """Step name → the steps it waits for; ValidationException names a cycle."""
    edges = {name: dependencies(step) for name, step in definition.steps.items()}
    cycle = _cycle(edges)
    if cycle:
        raise ValidationException.single(
            "Invalid pipeline definition: the steps depend on each other in a cycle: "
            + " -> ".join(cycle)
        )
    return edges


def _cycle(edges: Mapping[str, set[str]]) -> list[str]:
    state: dict[str, int] = {}  # 1 visiting, 2 done
    for start in edges:
        stack: list[tuple[str, list[str]]] = [(start, sorted(edges[start]))]
        path = [start]
        if state.get(start):
            continue
        state[start] = 1
        while stack:
            node, pending = stack[-1]
            if not pending:
                state[node] = 2
                stack.pop()
                path.pop()
                continue
            nxt = pending.pop()
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if not state.get(nxt) and nxt in edges:
                state[nxt] = 1
                stack.append((nxt, sorted(edges[nxt])))
                path.append(nxt)
    return []


def order(definition: Definition) -> list[list[str]]:
    """The steps in waves: each wave's steps wait only for earlier waves (for `pipeline plan`)."""
    edges = graph(definition)
    placed: set[str] = set()
    waves: list[list[str]] = []
    while len(placed) < len(edges):
        wave = [n for n, deps in edges.items() if n not in placed and deps <= placed]
        waves.append(wave)
        placed.update(wave)
    return waves
