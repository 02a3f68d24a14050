from __future__ import annotations

from sklearn.datasets import make_blobs

from kmrec_gpu.cluster.elbow import elbow, find_knee, plot_elbow


def test_knee_at_the_true_number_of_clusters():
    X, _ = make_blobs(1500, n_features=4, centers=4, cluster_std=0.6, random_state=7)
    res = elbow(X, range(1, 10), random_state=0, n_init=3, silhouette_sample=500)
    assert res.knee == 4
    assert max(res.silhouette, key=res.silhouette.get) == 4
    assert list(res.wcss) == sorted(res.wcss, reverse=True)
    again = elbow(X, range(1, 10), random_state=0, n_init=3, silhouette_sample=500)
    assert again.silhouette == res.silhouette  # the sample is seeded


def test_no_knee_on_a_straight_line():
    assert find_knee([1, 2, 3, 4, 5], [5.0, 4.0, 3.0, 2.0, 1.0], log=False) is None
    assert find_knee([1, 2], [2.0, 1.0]) is None


def test_plot_is_a_png(tmp_path):
    X, _ = make_blobs(300, centers=3, random_state=0)
    res = elbow(X, range(1, 6))
    out = plot_elbow(res, tmp_path / "sub" / "elbow.png", title="blobs")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in out.parent.iterdir()] == ["elbow.png"]  # no temp file left
    assert res.as_dict()["knee"] == res.knee


def test_log_curve_finds_knees_that_raw_wcss_undercounts():
    X, _ = make_blobs(1500, n_features=4, centers=6, cluster_std=0.6, random_state=3)
    res = elbow(X, range(1, 13), random_state=0, n_init=3, silhouette_sample=None)
    assert res.knee == 6
    assert find_knee(res.ks, res.wcss, log=False) < 6
