"""The similarity report on a class with a renamed-variables copy of a classmate, a commented copy
of the solution and honest answers written independently (which must not be paired)."""

from __future__ import annotations

import csv
import re

import nbformat
import pytest

from autograder.cli import main as cli
from autograder.similarity import SOLUTION, similarity
from submissions import Answer, build_submission, reference_answers
from zoo.ch04_self_attention import ALTERNATIVES

ASSIGNMENT = "04_self_attention"
SDPA, MHA = "scaled_dot_product_attention", "MultiHeadAttention"
ALT = {a.name: a.source for a in ALTERNATIVES}

# Honest answers, written independently for the cells the zoo's alternatives leave to the reference.
SPLIT_RESHAPE = '''
def split_heads(x, n_heads):
    batch, seq_len, width = x.size()
    if width % n_heads != 0:
        raise ValueError(f"cannot split {width} features into {n_heads} heads")
    head_width = width // n_heads
    return torch.stack(torch.chunk(x, n_heads, dim=-1), dim=1)
'''
MERGE_CAT = '''
def merge_heads(x):
    return torch.cat(torch.unbind(x, dim=1), dim=-1)
'''
MHA_FUSED = '''
class MultiHeadAttention(nn.Module):
    def __init__(self, d_model, n_heads, dropout=0.0, bias=True):
        super().__init__()
        if d_model % n_heads:
            raise ValueError("n_heads has to divide d_model")
        self.n_heads = n_heads
        self.w_q = nn.Linear(d_model, d_model, bias=bias)
        self.w_k = nn.Linear(d_model, d_model, bias=bias)
        self.w_v = nn.Linear(d_model, d_model, bias=bias)
        self.w_o = nn.Linear(d_model, d_model, bias=bias)
        self.attn_dropout = nn.Dropout(p=dropout)
        self.attn_weights = None

    def forward(self, query, key, value, mask=None):
        heads = [split_heads(proj(t), self.n_heads) for proj, t in ((self.w_q, query), (self.w_k, key), (self.w_v, value))]
        _, attn = scaled_dot_product_attention(*heads, mask=mask)
        self.attn_weights = attn.detach()
        mixed = torch.matmul(self.attn_dropout(attn), heads[2])
        return self.w_o(merge_heads(mixed))
'''
SPLIT_UNFLATTEN = '''
def split_heads(x, n_heads):
    d_model = x.shape[-1]
    assert_ok = d_model % n_heads == 0
    if not assert_ok:
        raise ValueError("d_model % n_heads != 0")
    return x.unflatten(-1, (n_heads, -1)).transpose(-3, -2)
'''
MERGE_FLATTEN = '''
def merge_heads(x):
    return x.transpose(-3, -2).flatten(-2)
'''
MHA_EINSUM = '''
class MultiHeadAttention(nn.Module):
    def __init__(self, d_model, n_heads, dropout=0.0, bias=True):
        super().__init__()
        if d_model % n_heads != 0:
            raise ValueError(f"{d_model} % {n_heads} != 0")
        self.d_model, self.n_heads, self.p = d_model, n_heads, dropout
        for name in ("w_q", "w_k", "w_v", "w_o"):
            setattr(self, name, nn.Linear(d_model, d_model, bias=bias))

    def forward(self, query, key, value, mask=None):
        q = split_heads(self.w_q(query), self.n_heads)
        kv = [split_heads(layer(src), self.n_heads) for layer, src in ((self.w_k, key), (self.w_v, value))]
        weights = scaled_dot_product_attention(q, kv[0], kv[1], mask)[1]
        self.attn_weights = weights.detach()
        weights = F.dropout(weights, self.p, self.training)
        context = torch.einsum("bhqk,bhkd->bhqd", weights, kv[1])
        return self.w_o(merge_heads(context))
'''

HONEST = {
    "hana": {**ALT["einsum_everywhere"], **ALT["loop_over_heads"]},
    "ivan": {**ALT["explicit_loops"], "split_heads": SPLIT_RESHAPE, "merge_heads": MERGE_CAT, MHA: MHA_FUSED},
    "jo": {**ALT["logsumexp_softmax"], "split_heads": SPLIT_UNFLATTEN, "merge_heads": MERGE_FLATTEN, MHA: MHA_EINSUM},
}


def _renamed_copy(sources: dict[str, str]) -> dict[str, str]:
    """Hana's answers as a copier hands them in: every local name renamed, comments added, the
    methods of the class in the other order."""
    renames = {"scores": "logits", "weights": "probs", "mask": "allowed", "outputs": "outs", "maps": "attn_maps",
               "part": "cols", "head_mask": "hm", "query": "qry", "value": "val", r"\bb\b": "bs", r"\bl\b": "n"}
    copied = {}
    for grade_id, code in sources.items():
        for old, new in renames.items():
            code = re.sub(old if old.startswith("\\") else rf"\b{old}\b", new, code)
        code = code.replace("):\n", "):\n    # my own implementation\n", 1)
        copied[grade_id] = code
    cls = copied[MHA]
    header, rest = cls.split("    def __init__", 1)
    init, forward = rest.split("    def forward", 1)
    copied[MHA] = header + "    def forward" + forward.rstrip() + "\n\n    # constructor\n    def __init__" + init.rstrip() + "\n"
    return copied


def _commented_solution() -> dict[str, str]:
    """The instructor's solution with a comment on every other line and one variable renamed."""
    out = {}
    for grade_id, code in reference_answers(ASSIGNMENT).items():
        lines = [line + ("  # step" if i % 2 and line.strip() else "") for i, line in enumerate(code.splitlines())]
        out[grade_id] = "\n".join(lines).replace("scores", "att_scores")
    return out


CLASS = {**HONEST, "kim": _renamed_copy(HONEST["hana"]), "lee": _commented_solution()}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    course = tmp_path_factory.mktemp("course")
    for student, sources in CLASS.items():
        nb = build_submission(ASSIGNMENT, Answer(student, "", source=sources))
        folder = course / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{ASSIGNMENT}.ipynb")
    untouched = course / "submitted" / "max" / ASSIGNMENT
    untouched.mkdir(parents=True)
    nbformat.write(build_submission(ASSIGNMENT, None), untouched / f"{ASSIGNMENT}.ipynb")
    return similarity(ASSIGNMENT, course)


def _pair(report, a, b):
    return next(p for p in report.pairs if {p.a, p.b} == {a, b})


def test_the_renamed_copy_is_paired_with_its_original(report):
    top = report.pairs[0]
    assert {top.a, top.b} == {"hana", "kim"}, f"expected hana and kim to be the most similar pair, got {top}"
    assert top.similarity >= 0.8, f"a renamed, commented, reordered copy should share >= 80%, got {top.similarity:.0%}"
    assert [{p.a, p.b} for p in report.suspicious()] == [{"hana", "kim"}], (
        "only the copy may be paired; honest answers written independently must stay below the threshold: "
        + ", ".join(f"{p.a}-{p.b} {p.similarity:.0%}" for p in report.pairs))


def test_honest_independent_answers_are_not_paired(report):
    for a, b in (("hana", "ivan"), ("hana", "jo"), ("ivan", "jo"), ("ivan", "kim"), ("jo", "lee")):
        pair = _pair(report, a, b)
        assert pair.similarity < report.threshold / 2, f"{a} and {b} wrote their answers independently: {pair}"


def test_the_commented_solution_is_like_the_solution(report):
    by_student = {p.a: p.similarity for p in report.solution}
    assert by_student["lee"] >= 0.9, f"a commented copy of the solution should be >= 90% the solution: {by_student}"
    assert [p.a for p in report.like_solution()] == ["lee"], f"only lee copied the solution: {by_student}"
    for student in HONEST:
        assert by_student[student] < report.threshold, f"{student} wrote their own answers: {by_student}"


def test_stubs_and_provided_code_do_not_count(report):
    assert "max" in report.skipped and "as released" in report.skipped["max"], report.skipped
    assert all("max" not in (p.a, p.b) for p in report.pairs)


def test_csv_and_html_show_the_pairs_side_by_side(report):
    rows = list(csv.DictReader(report.csv.read_text(encoding="utf-8").splitlines()))
    n = len(CLASS)
    assert len(rows) == n * (n - 1) // 2 + n, "every pair and every student against the solution"
    flagged = {(r["student_a"], r["student_b"]) for r in rows if r["at_or_above_threshold"] == "yes"}
    assert flagged == {("hana", "kim"), ("lee", SOLUTION)}, flagged
    page = report.html.read_text(encoding="utf-8")
    assert "hana and kim" in page and "<mark>" in page and "class='side'" in page
    assert "logits" in page and "scores" in page, "both answers are shown, as written"
    assert "raise NotImplementedError" not in page.split("Like the solution")[0]


def test_command_line(report, capsys):
    course = report.csv.parent.parent
    assert cli(["similarity", ASSIGNMENT, "--course-dir", str(course)]) == 0
    out = capsys.readouterr().out
    assert "similar: hana and kim" in out and "like the solution: lee" in out, out


def test_guide_shows_what_similarity_prints_for_the_sample_class(tmp_path, capsys):
    from autograder import collect
    from test_examples import EXAMPLES, GUIDE, guide_outputs

    course = tmp_path / "course"
    collect(ASSIGNMENT, [EXAMPLES / ASSIGNMENT], course)
    assert cli(["similarity", ASSIGNMENT, "--course-dir", str(course)]) == 0
    printed = capsys.readouterr().out.replace(str(course), "~/course")
    assert printed in guide_outputs(), f"update the similarity output in {GUIDE.name} to:\n{printed}"
