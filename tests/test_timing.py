from neurosql.timing import format_summary, stage_times


def _write_benchmark(path, seconds):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"s\th:m:s\tmax_rss\n{seconds}\t0:00:01\t10.0\n")


def test_stage_times_reads_last_record(tmp_path):
    _write_benchmark(tmp_path / "train" / "mnist_convnet" / "vae_z2_s11.tsv", 12.5)
    _write_benchmark(tmp_path / "prepare" / "mnist.tsv", 1.5)
    rows = stage_times(tmp_path)
    assert rows == [("prepare", "mnist", 1.5), ("train", "mnist_convnet/vae_z2_s11", 12.5)]


def test_summary_totals_per_stage(tmp_path):
    rows = [("train", "a", 10.0), ("train", "b", 5.0), ("evaluate", "a", 2.0)]
    lines = format_summary(rows).splitlines()
    assert lines[1].split() == ["train", "2", "15.0"]
    assert lines[2].split() == ["evaluate", "1", "2.0"]
    assert lines[-1].split() == ["total", "3", "17.0"]
