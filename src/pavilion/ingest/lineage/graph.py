"""The lineage graph (datasets and jobs, from stored events' links) and its rendering as DOT,
or as SVG/PNG through Graphviz when the ``pavilion[graphviz]`` extra and ``dot`` are there."""

from __future__ import annotations

import importlib.util
import re
import shutil
from dataclasses import dataclass, field
from typing import Any, Final, TypedDict


class DatasetView(TypedDict):
    name: str
    columns: list[str]


#: An edge, dataset -> job (an input) or job -> dataset (an output).
EdgeView = TypedDict("EdgeView", {"from": str, "to": str})


class GraphView(TypedDict):
    datasets: list[DatasetView]
    jobs: list[str]
    edges: list[EdgeView]


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

    def as_dict(self) -> GraphView:
        return GraphView(
            datasets=[DatasetView(name=d, columns=self.columns.get(d, [])) for d in self.datasets],
            jobs=self.jobs,
            edges=[
                EdgeView({"from": name, "to": job})
                if role == "input"
                else EdgeView({"from": job, "to": name})
                for job, name, role in sorted(self.edges)
            ],
        )

    def to_dot(self, focus: str | None = None) -> str:
        """Graphviz DOT text; written here so that drawing needs no Graphviz package."""
        lines = ["digraph lineage {", "\tgraph [fontname=Helvetica rankdir=LR]"]
        for name in self.datasets:
            columns = self.columns.get(name, [])
            label = name if not columns else name + "\\n" + "\\l".join(columns) + "\\l"
            style = "rounded,filled,bold" if name == focus else "rounded,filled"
            fill = "#dbeafe" if name.startswith("pavilion.") else "#fef3c7"
            lines.append(
                f"\t{_dot_id(f'dataset {name}')} [label={_dot_id(label)} "
                f"fillcolor={_dot_id(fill)} shape=box style={_dot_id(style)}]"
            )
        for job in self.jobs:
            lines.append(
                f"\t{_dot_id(f'job {job}')} [label={_dot_id(job)} "
                'fillcolor="#e5e7eb" shape=ellipse style=filled]'
            )
        for job, name, role in sorted(self.edges):
            dataset, task = _dot_id(f"dataset {name}"), _dot_id(f"job {job}")
            lines.append(f"\t{dataset} -> {task}" if role == "input" else f"\t{task} -> {dataset}")
        lines.append("}")
        return "\n".join(lines) + "\n"


_DOT_BARE_ID: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _dot_id(text: str) -> str:
    """A DOT identifier: bare when it may be, else quoted (escapes such as ``\\l`` kept)."""
    if _DOT_BARE_ID.fullmatch(text):
        return text
    return '"' + text.replace('"', '\\"') + '"'


def graphviz_available() -> bool:
    """Whether SVG/PNG can be drawn: the ``pavilion[graphviz]`` extra and Graphviz's ``dot``."""
    return importlib.util.find_spec("graphviz") is not None and shutil.which("dot") is not None


def render(dot_source: str, fmt: str) -> tuple[bytes, str]:
    """(bytes, format actually produced): SVG/PNG through Graphviz's ``dot``, else DOT text."""
    if fmt != "dot" and importlib.util.find_spec("graphviz") is not None:
        import graphviz  # type: ignore[import-untyped]  # optional: pavilion[graphviz]

        try:
            return graphviz.Source(dot_source).pipe(format=fmt), fmt
        except graphviz.ExecutableNotFound:
            pass
    return dot_source.encode("utf-8"), "dot"
