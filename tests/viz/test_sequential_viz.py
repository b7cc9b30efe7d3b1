"""Figures of a next-item comparison: the plotted numbers are the results' own, the files are
whole PNGs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from matplotlib.container import BarContainer, ErrorbarContainer
from matplotlib.image import imread

from graphsel import viz
from graphsel.errors import InputError
from graphsel.transfer.sequential.options import load_next_item_config
from graphsel.transfer.sequential.runner import run_next_item
from tests.transfer.sequential.tiny import tiny_next_item_config, write_tiny_ml1m

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MODELS = ("syncrec", "syncrec_no_lcntg", "sasrec_cdsr")


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """A real comparison on a tiny ML-1M folder: 3 models x 2 seeds, 2 epochs."""
    folder = tmp_path_factory.mktemp("next_item")
    config = folder / "c.yaml"
    config.write_text(tiny_next_item_config(write_tiny_ml1m(folder / "ml-1m"),
                                            f"[{', '.join(MODELS)}]"))
    return run_next_item(load_next_item_config(config))


def _groups(results):
    return ["overall", *results.domain_names]


def test_domain_bars_are_the_tables_numbers_with_the_intervals(results):
    ax = viz.plot_domain_metric(results).axes[0]
    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    assert [c.get_label() for c in bars] == list(MODELS)
    groups = _groups(results)
    assert [t.get_text().split("\n")[0] for t in ax.get_xticklabels()] == groups
    for model, container in zip(MODELS, bars):
        heights = [rect.get_height() for rect in container]
        assert heights == [results.mean(model, g, "ndcg@10") for g in groups]
        segments = container.errorbar.lines[2][0].get_segments()
        ends = [(segment[0][1], segment[1][1]) for segment in segments]
        expected = [results.intervals[model][g][1:] for g in groups]
        np.testing.assert_allclose(ends, expected, rtol=0, atol=1e-12)


def test_differences_are_the_comparisons(results):
    ax = viz.plot_model_differences(results).axes[0]
    points = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert [c.get_label() for c in points] == ["syncrec_no_lcntg", "sasrec_cdsr"]
    for comparison, container in zip(results.comparisons, points):
        expected = [comparison.groups[g] for g in _groups(results)]
        np.testing.assert_allclose(container.lines[0].get_ydata(), [e[0] for e in expected],
                                   rtol=0, atol=1e-12)
        ends = [(s[0][1], s[1][1]) for s in container.lines[2][0].get_segments()]
        np.testing.assert_allclose(ends, [e[1:] for e in expected], rtol=0, atol=1e-12)


def test_ntg_lines_are_the_seed_means_of_every_epoch(results):
    figure = viz.plot_ntg(results)
    assert len(figure.axes) == 4  # syncrec and syncrec_no_lcntg, gaps and weights; no SASRec
    domains = len(results.domain_names)
    for row, model in enumerate(("syncrec", "syncrec_no_lcntg")):
        runs = [run for run in results.runs if run.model == model]
        assert len({len(run.gaps) for run in runs}) == 1  # same epochs: a plain mean
        for column, key in enumerate(("gaps", "weights")):
            lines = figure.axes[2 * row + column].lines[:domains]
            assert [line.get_label() for line in lines] == list(results.domain_names)
            expected = np.mean([getattr(run, key) for run in runs], axis=0)
            for d, line in enumerate(lines):
                np.testing.assert_allclose(line.get_ydata(), expected[:, d], atol=1e-12)
    flat = figure.axes[3].lines[0].get_ydata()  # without LC-NTG every weight is 1 / D
    np.testing.assert_allclose(flat, 1.0 / domains)


def test_epoch_bands_average_the_seeds_that_reached_each_epoch():
    mean, low, high = viz.epoch_bands([[[1.0], [2.0], [4.0]], [[3.0]], [[np.nan]]])
    assert mean[:, 0].tolist() == [2.0, 2.0, 4.0]
    assert low[:, 0].tolist() == [1.0, 2.0, 4.0] and high[:, 0].tolist() == [3.0, 2.0, 4.0]
    mean, low, high = viz.epoch_bands([[[np.nan]], [[np.nan]]])
    assert np.isnan([mean, low, high]).all()


def test_save_next_item_plots_writes_whole_pngs(tmp_path, results):
    out = tmp_path / "plots" / "nested"
    paths = viz.save_next_item_plots(results, out)
    assert [p.name for p in paths] == list(viz.NEXT_ITEM_FIGURES)
    assert sorted(p.name for p in out.iterdir()) == sorted(viz.NEXT_ITEM_FIGURES)
    for path in paths:
        assert path.read_bytes()[:8] == PNG_MAGIC
        image = imread(path)  # decodes the whole file
        assert image.ndim == 3 and min(image.shape[:2]) > 100
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="is a file"):
        viz.save_next_item_plots(results, tmp_path / "file")


def test_one_model_without_both_paths_gives_only_the_domain_figure(tmp_path, results):
    alone = dataclasses.replace(
        results, config=dataclasses.replace(results.config, models=("sasrec_cdsr",),
                                            reference="sasrec_cdsr"),
        runs=[run for run in results.runs if run.model == "sasrec_cdsr"], comparisons=[])
    assert [name for name, _ in viz.next_item_figures(alone)] == ["domains.png"]
    assert [p.name for p in viz.save_next_item_plots(alone, tmp_path)] == ["domains.png"]
    with pytest.raises(InputError, match="no model besides the reference 'sasrec_cdsr'"):
        viz.plot_model_differences(alone)
    with pytest.raises(InputError, match="no model with both paths"):
        viz.plot_ntg(alone)


def test_save_next_item_plots_leaves_no_partial_file(tmp_path, results, failing_savefig):
    with pytest.raises(RuntimeError, match="disk full"):
        viz.save_next_item_plots(results, tmp_path)
    assert list(tmp_path.iterdir()) == []
