"""Waveform peaks in the engine: exactly the written samples' extremes, whatever the output's
sample type, when the parts of a split decode each measure their own frames, and after pixels
are merged to stay within the budget."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile

from wavforge.audio import OutputOptions, UnsupportedAudio, convert, measure_peaks
from wavforge.audio.engine import Peaks
from wavforge.audio.options import Limits
from wavforge.audio.peaks import MAX_POINTS, PeakMeter

from audiogen import make_music_mp3
from conftest import needs_two_cpus


def pixel_extremes(samples: np.ndarray, per_pixel: int) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel of ``per_pixel`` frames (the last one short), each channel's min and max."""
    starts = np.arange(0, len(samples), per_pixel)
    return np.minimum.reduceat(samples, starts, axis=0), np.maximum.reduceat(samples, starts)


def written_top_bits(wav: Path) -> np.ndarray:
    """What audiowaveform's 8-bit data holds for each written sample: its top eight bits, or
    ``floor(x * 128)`` of a float sample, clamped."""
    if soundfile.info(str(wav)).subtype == "FLOAT":
        floats, _ = soundfile.read(str(wav), dtype="float32", always_2d=True)
        return np.clip(np.floor(floats.astype(np.float64) * 128), -128, 127).astype(np.int64)
    ints, _ = soundfile.read(str(wav), dtype="int32", always_2d=True)
    return (ints >> 24).astype(np.int64)  # 16- and 24-bit samples sit at the top of an int32


@pytest.fixture(scope="module")
def long_mp3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Long enough to be cut in two parts (two minutes and more), and loud."""
    folder = tmp_path_factory.mktemp("peaks-engine")
    return make_music_mp3(
        folder / "long.mp3", 125.0, rate=22050, bit_rate=64_000, peak=1.0, fast=True
    )


@needs_two_cpus
@pytest.mark.parametrize(
    "options",
    [
        OutputOptions(),
        OutputOptions(bit_depth=24),
        OutputOptions(bit_depth=32, sample_format="float"),
    ],
    ids=["16-bit", "24-bit", "float"],
)
def test_a_split_decode_measures_the_written_samples_exactly(
    tmp_path: Path,
    long_mp3: Path,
    split_counts: list[int],
    monkeypatch: pytest.MonkeyPatch,
    options: OutputOptions,
) -> None:
    merged: list[list[Peaks]] = []
    merge = Peaks.merge

    def spy(parts: list[Peaks]) -> Peaks | None:
        merged.append(list(parts))
        return merge(parts)

    monkeypatch.setattr(Peaks, "merge", staticmethod(spy))
    dst = tmp_path / "out.wav"
    result = convert(long_mp3, dst, options=options, limits=Limits(parallelism=2))
    assert split_counts == [2]
    ((first, second),) = merged  # one part from each process
    # The cut falls inside a pixel, which both parts measured: the merge is put to the test.
    assert first.first == 0 and first.first + first.length - 1 == second.first

    assert result.peaks is not None
    document = result.peaks.audiowaveform(result.sample_rate)
    assert document["version"] == 2 and document["bits"] == 8
    assert (document["channels"], document["sample_rate"]) == (2, 22050)
    samples = written_top_bits(dst)
    per_pixel = document["samples_per_pixel"]
    assert document["length"] == -(-len(samples) // per_pixel) <= MAX_POINTS
    drawn = np.array(document["data"]).reshape(document["length"], 2, 2)
    low, high = pixel_extremes(samples, per_pixel)
    assert np.array_equal(drawn[:, :, 0], low)
    assert np.array_equal(drawn[:, :, 1], high)
    assert high.max() > 100 and low.min() < -100  # a loud signal: not a comparison of silence


def test_a_source_measured_alone_has_the_peaks_of_its_default_wav(
    tmp_path: Path, long_mp3: Path
) -> None:
    """``measure_peaks`` decodes as a default conversion does and writes nothing: the
    source's waveform is its default WAV's, pixel for pixel."""
    fractions: list[float] = []
    alone = measure_peaks(long_mp3, progress=fractions.append, progress_interval=0.0)
    converted = convert(long_mp3, tmp_path / "out.wav", loudness=False).waveform
    assert alone.document() == converted.document() is not None
    assert fractions[-1] == 1.0 and len(fractions) > 2
    assert list(tmp_path.iterdir()) == [tmp_path / "out.wav"]

    junk = tmp_path / "junk.mp3"
    junk.write_bytes(b"not audio at all\n" * 100)
    with pytest.raises(UnsupportedAudio):
        measure_peaks(junk)


def test_no_peaks_when_not_asked_for(tmp_path: Path, long_mp3: Path) -> None:
    assert convert(long_mp3, tmp_path / "out.wav", peaks=False).peaks is None


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.float32])
def test_meters_that_start_anywhere_merge_and_coarsen_exactly(dtype: Any) -> None:
    """Two meters split the frames at an arbitrary cut, each fed batches of any size, strided
    (interleaved) or not; merged, and then coarsened to a few pixels, they are numpy's extremes
    over the same frames."""
    rng = np.random.default_rng(7)
    frames, per_pixel, cut = 50_000, 333, 21_017
    if np.dtype(dtype).kind == "f":
        samples = rng.uniform(-1.5, 1.5, (frames, 3)).astype(dtype)
    else:
        info = np.iinfo(dtype)
        samples = rng.integers(info.min, info.max, (frames, 3), endpoint=True, dtype=dtype)

    def measured(start: int, stop: int) -> Peaks:
        meter = PeakMeter(per_pixel)
        if start:
            meter.begin_at(start)
        at = start
        while at < stop:
            size = min(int(rng.integers(1, 2000)), stop - at)
            batch = samples[at : at + size]
            meter.add(batch.T if size % 2 else np.ascontiguousarray(batch.T))
            at += size
        found = meter.result()
        assert found is not None
        return found

    second, first = measured(cut, frames), measured(0, cut)  # the parent may join in any order
    whole = Peaks.merge([second, first])
    assert whole is not None and (whole.first, whole.length) == (0, -(-frames // per_pixel))
    low, high = pixel_extremes(samples, per_pixel)
    assert np.array_equal(whole.low, low) and np.array_equal(whole.high, high)

    coarse = whole.coarsened(max_points=7)
    assert coarse.length <= 7
    low, high = pixel_extremes(samples, coarse.samples_per_pixel)
    assert np.array_equal(coarse.low, low) and np.array_equal(coarse.high, high)
