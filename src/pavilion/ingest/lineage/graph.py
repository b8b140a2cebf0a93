"""The lineage graph (datasets and jobs, from stored events' links) and its rendering as DOT,
SVG or PNG through Graphviz."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from typing import Any

import graphviz  # type: ignore[import-untyped]


def links_of(event: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(job, dataset, role) edges of a serialised event."""
    job = str(event["job"]["name"])
    edges = [(job, str(d["name"]), "input") for d in event.get("inputs") or []]
    edges += [(job, str(d["name"]), "output") for d in event.get("outputs") or []]
    return edges


@dataclass
class LineageGraph:
    """Datasets and jobs; an edge runs dataset -> job (input) or job -> dataset (output)."""

    edges: set[tuple[str, str, str]]
    columns: dict[str, list[str]] = field(default_factory=dict)

    def around(self, dataset: str) -> LineageGraph:
        """Everything upstream and downstream of a dataset."""
        forward: dict[str, set[str]] = {}
        backward: dict[str, set[str]] = {}
        for job, name, role in self.edges:
            src, dst = (name, f"job:{job}") if role == "input" else (f"job:{job}", name)
            forward.setdefault(src, set()).add(dst)
            backward.setdefault(dst, set()).add(src)
        keep: set[str] = {dataset}
        for links in (forward, backward):
            queue = [dataset]
            while queue:
                node = queue.pop()
                for nxt in links.get(node, ()):
                    if nxt not in keep:
                        keep.add(nxt)
                        queue.append(nxt)
        edges = {
            (job, name, role)
            for job, name, role in self.edges
            if name in keep and f"job:{job}" in keep
        }
        return LineageGraph(edges, {k: v for k, v in self.columns.items() if k in keep})

    @property
    def datasets(self) -> list[str]:
        return sorted({name for _, name, _ in self.edges})

    @property
    def jobs(self) -> list[str]:
        return sorted({job for job, _, _ in self.edges})

    def as_dict(self) -> dict[str, Any]:
        return {
            "datasets": [{"name": d, "columns": self.columns.get(d, [])} for d in self.datasets],
            "jobs": self.jobs,
            "edges": [
                {"from": name, "to": job} if role == "input" else {"from": job, "to": name}
                for job, name, role in sorted(self.edges)
            ],
        }

    def to_dot(self, focus: str | None = None) -> str:
        dot = graphviz.Digraph("lineage", graph_attr={"rankdir": "LR", "fontname": "Helvetica"})
        for name in self.datasets:
            columns = self.columns.get(name, [])
            label = name if not columns else name + "\\n" + "\\l".join(columns) + "\\l"
            dot.node(
                f"dataset {name}",
                label=label,
                shape="box",
                style="rounded,filled,bold" if name == focus else "rounded,filled",
                fillcolor="#dbeafe" if name.startswith("pavilion.") else "#fef3c7",
            )
        for job in self.jobs:
            dot.node(f"job {job}", label=job, shape="ellipse", style="filled", fillcolor="#e5e7eb")
        for job, name, role in sorted(self.edges):
            if role == "input":
                dot.edge(f"dataset {name}", f"job {job}")
            else:
                dot.edge(f"job {job}", f"dataset {name}")
        return str(dot.source)


def graphviz_available() -> bool:
    return shutil.which("dot") is not None


def render(dot_source: str, fmt: str) -> tuple[bytes, str]:
    """(bytes, format actually produced): SVG/PNG through Graphviz's ``dot``, else DOT text."""
    if fmt != "dot":
        try:
            return graphviz.Source(dot_source).pipe(format=fmt), fmt
        except graphviz.ExecutableNotFound:
            pass
    return dot_source.encode("utf-8"), "dot"
