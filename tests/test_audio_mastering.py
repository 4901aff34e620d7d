"""What a mastering engineer checks: loudness and true peak, dither, the distribution preset.

Loudness is compared with the newest FFmpeg's own ``ebur128`` filter (audiogen.ORACLE) run on
the WAV the engine wrote, on signals that exercise each part of the measurement: a steady tone,
pink noise, a quiet passage (the gates), a clipped master (true peak above the samples) and a
mono file. Dither is judged by what it is for: the error against the ideal signal.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile

from wavforge.audio import Limits, OutputOptions, convert
from wavforge.audio.analysis import Analysis

from audiogen import ORACLE, read_wav, samples
from conftest import needs_two_cpus

# Within these of FFmpeg's ebur128 (which prints one decimal, so up to 0.05 is its rounding).
LOUDNESS_TOLERANCE = 0.1


def lavfi(path: Path, source: str, *encode: str) -> Path:
    """A test signal from FFmpeg's generators, encoded by the oracle."""
    cmd = [ORACLE, "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", source, *encode]
    subprocess.run([*cmd, str(path)], check=True)
    return path


SIGNALS = {
    "sine": ("sine=f=997:r=48000:d=8", "-ac", "2", "-c:a", "pcm_s24le", "sine.wav"),
    "pink-noise": (
        "anoisesrc=c=pink:a=0.25:r=44100:d=8:seed=3",
        "-ac", "2", "-c:a", "flac", "pink.flac",
    ),
    "quiet-passage": (
        "aevalsrc=0.5*sin(2*PI*440*t)*if(lt(t\\,4)\\,1\\,0.01):s=44100:d=10",
        "-ac", "2", "-c:a", "pcm_s16le", "quiet.wav",
    ),
    "clipped-master": (  # two channels of their own: an upmix would lower the level
        "aevalsrc=1.6*sin(2*PI*200*t)+0.3*sin(2*PI*5000*t)|1.4*sin(2*PI*300*t):s=44100:d=6",
        "-c:a", "pcm_f32le", "clipped.wav",
    ),
    "mono": ("sine=f=440:r=44100:d=8", "-ac", "1", "-c:a", "pcm_s16le", "mono.wav"),
}  # fmt: skip


def ebur128(wav: Path) -> dict[str, float]:
    """FFmpeg 9's summary of a file: integrated loudness, loudness range, true peak."""
    cmd = [ORACLE, "-nostdin", "-nostats", "-i", str(wav)]
    cmd += ["-af", "ebur128=peak=true:framelog=quiet", "-f", "null", "-"]
    text = subprocess.run(cmd, capture_output=True, text=True, check=True).stderr
    summary = text[text.rindex("Summary:") :]
    found = {
        key: float(re.search(rf"{label}:\s+(-?[\d.]+|-inf)", summary).group(1))  # type: ignore[union-attr]
        for key, label in (("I", "I"), ("LRA", "LRA"), ("TP", "Peak"))
    }
    return found


@pytest.mark.parametrize("name", SIGNALS)
def test_loudness_agrees_with_ffmpeg_ebur128(tmp_path: Path, name: str) -> None:
    source, *encode, filename = SIGNALS[name]
    src = lavfi(tmp_path / filename, source, *encode)
    options = OutputOptions(bit_depth=16) if name == "clipped-master" else OutputOptions()
    result = convert(src, tmp_path / "out.wav", options=options)
    facts = result.analysis
    reference = ebur128(tmp_path / "out.wav")
    assert facts.integrated_loudness is not None
    assert abs(facts.integrated_loudness - reference["I"]) <= LOUDNESS_TOLERANCE
    assert facts.loudness_range is not None
    assert abs(facts.loudness_range - reference["LRA"]) <= LOUDNESS_TOLERANCE
    assert facts.true_peak_dbtp is not None
    assert abs(facts.true_peak_dbtp - reference["TP"]) <= LOUDNESS_TOLERANCE
    assert facts.source_lossy is False
    if name == "quiet-passage":  # the gates at work: the quiet half widens the range
        assert reference["LRA"] > 5
    if name == "clipped-master":
        assert facts.clipped_samples > 0
        assert facts.peak_dbfs > 0  # the source's own peak, before the clamp
        assert facts.true_peak_dbtp > 0  # full-scale samples overshoot between them
        assert [w.split(":")[0] for w in facts.warnings] == ["clipping", "true-peak"]
    else:
        assert facts.warnings == ()


def test_silence_has_no_loudness(tmp_path: Path) -> None:
    src = lavfi(tmp_path / "silence.wav", "anullsrc=r=44100:cl=stereo:d=3", "-c:a", "pcm_s16le")
    facts = convert(src, tmp_path / "out.wav").analysis
    assert (facts.integrated_loudness, facts.loudness_range, facts.true_peak_dbtp) == (
        None,
        None,
        None,
    )


def test_lossy_sources_say_so(tmp_path: Path) -> None:
    src = lavfi(tmp_path / "a.mp3", "sine=d=2", "-c:a", "libmp3lame")
    facts = convert(src, tmp_path / "out.wav").analysis
    assert facts.source_lossy is True
    assert facts.to_dict()["sourceLossy"] is True
    assert facts.to_dict()["warnings"] == []


def test_loudness_can_be_skipped(tmp_path: Path) -> None:
    src = lavfi(tmp_path / "a.wav", "sine=d=2", "-c:a", "pcm_s16le")
    facts = convert(src, tmp_path / "out.wav", loudness=False).analysis
    assert facts.integrated_loudness is None and facts.true_peak_dbtp is None


# --------------------------------------------------------------------------- dither

RATE, TONE, SECONDS = 48_000, 1_000, 2  # a whole number of periods: each harmonic is one bin
QUIET = 10 ** (-90 / 20)  # -90 dBFS: about one 16-bit step


@pytest.fixture(scope="module")
def quiet_sine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """A 24-bit mono file of a -90 dBFS sine, and its samples in 16-bit steps (the ideal)."""
    t = np.arange(RATE * SECONDS) / RATE
    s24 = np.round(QUIET * np.sin(2 * np.pi * TONE * t) * 2**23).astype(np.int32)
    path = tmp_path_factory.mktemp("dither") / "quiet.wav"
    soundfile.write(path, s24 * 256, RATE, subtype="PCM_24")  # soundfile takes int32 scaled
    return path, s24 / 256.0


def sixteen_bit_error(src: Path, ideal: np.ndarray, out: Path, **options: str) -> np.ndarray:
    convert(src, out, options=OutputOptions(bit_depth=16, **options), dither_seed=11)  # type: ignore[arg-type]
    written = samples(read_wav(out).data, "s16le", 1)[:, 0].astype(np.float64)
    return written - ideal


def harmonic_excess(error: np.ndarray) -> float:
    """The strongest of harmonics 1-9 of the tone, over the mean power of the error."""
    power = np.abs(np.fft.rfft(error)) ** 2
    bins = [k * TONE * SECONDS for k in range(1, 10)]
    return float(power[bins].max() / power.mean())


def test_dropping_bits_without_dither_distorts(
    quiet_sine: tuple[Path, np.ndarray], tmp_path: Path
) -> None:
    """FFmpeg's (and the default's) 24-to-16 truncation: an error that follows the signal."""
    src, ideal = quiet_sine
    error = sixteen_bit_error(src, ideal, tmp_path / "plain.wav")
    assert error.mean() < -0.3  # truncation is biased (about -1/2 step)
    assert harmonic_excess(error) > 1000  # all of it at the tone's harmonics


def test_tpdf_dither_leaves_only_noise(quiet_sine: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    """TPDF of +-1 LSB: the error has zero mean, an RMS of 0.5 LSB (1/12 + 1/6 of a step
    squared), and no harmonic stands out of the noise floor."""
    src, ideal = quiet_sine
    error = sixteen_bit_error(src, ideal, tmp_path / "dithered.wav", dither="tpdf")
    assert abs(error.mean()) < 0.02
    assert np.sqrt(np.mean(error**2)) == pytest.approx(0.5, abs=0.03)
    assert np.abs(error).max() <= 1.5
    assert harmonic_excess(error) < 20  # chance of a noise bin this high: e**-20


def test_dither_is_deterministic_per_seed(
    quiet_sine: tuple[Path, np.ndarray], tmp_path: Path
) -> None:
    src, _ = quiet_sine
    tpdf = OutputOptions(bit_depth=16, dither="tpdf")
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        convert(src, tmp_path / f"{name}.wav", options=tpdf, dither_seed=seed)
    same = (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()
    assert same and (tmp_path / "a.wav").read_bytes() != (tmp_path / "c.wav").read_bytes()


def test_dither_only_where_bits_are_dropped(tmp_path: Path) -> None:
    """A 16-bit source written as 16-bit has nothing to dither: bit-identical to plain."""
    src = lavfi(tmp_path / "a.wav", "sine=d=1", "-c:a", "pcm_s16le")
    convert(src, tmp_path / "plain.wav")
    convert(src, tmp_path / "tpdf.wav", options=OutputOptions(dither="tpdf"))
    assert (tmp_path / "plain.wav").read_bytes() == (tmp_path / "tpdf.wav").read_bytes()


# --------------------------------------------------------------------------- distribution preset


def test_distribution_preset(tmp_path: Path) -> None:
    """48 kHz 24-bit in, CD format out: 44.1 kHz, 16-bit, dithered, soxr-resampled."""
    tone = "0.125*sin(2*PI*1000*t)"  # -18.06 dBFS
    src = lavfi(
        tmp_path / "hi.flac",
        f"aevalsrc={tone}|{tone}:s=48000:d=4",
        "-sample_fmt", "s32", "-c:a", "flac",
    )  # fmt: skip
    result = convert(src, tmp_path / "cd.wav", options=OutputOptions(preset="distribution"))
    wav = read_wav(tmp_path / "cd.wav")
    assert (wav.rate, wav.bits, result.frames) == (44_100, 16, 4 * 44_100)
    facts: Analysis = result.analysis
    assert facts.output_sample_rate == 44_100 and facts.output_bit_depth == 16
    assert facts.warnings == ()
    # Still the tone, at its level.
    ours = samples(wav.data, "s16le", 2)[:, 0] / 32768.0
    spectrum = np.abs(np.fft.rfft(ours[44_100:88_200]))
    assert int(spectrum.argmax()) == 1000  # 1 Hz bins over one second
    assert facts.peak_dbfs == pytest.approx(-18.06, abs=0.1)


def test_distribution_preset_warns_about_a_hot_master(tmp_path: Path) -> None:
    src = lavfi(
        tmp_path / "hot.wav",
        "aevalsrc=1.2*sin(2*PI*1000*t)|1.2*sin(2*PI*1000*t):s=48000:d=2",
        "-c:a", "pcm_f32le",
    )  # fmt: skip
    facts = convert(src, tmp_path / "cd.wav", options=OutputOptions(preset="distribution")).analysis
    assert facts.clipped_samples > 0
    assert [w.split(":")[0] for w in facts.warnings] == ["clipping", "true-peak"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"preset": "distribution", "bit_depth": 24}, "sets bitDepth to 16"),
        ({"preset": "distribution", "sample_rate": 48000}, "sets sampleRate to 44100"),
        ({"preset": "distribution", "dither": "none"}, "dithers"),
        ({"preset": "streaming"}, 'preset must be one of "distribution"'),
        ({"dither": "rpdf"}, 'dither must be one of "none", "tpdf"'),
        ({"dither": 1}, "dither must be one of"),
        ({"loudness": "true"}, "loudness must be true or false"),
        ({"loudness": 0}, "loudness must be true or false"),
    ],
)
def test_option_rules(values: dict[str, object], message: str) -> None:
    names = {"bit_depth": "bitDepth", "sample_rate": "sampleRate"}
    with pytest.raises(ValueError, match=re.escape(message)):
        OutputOptions.parse(values, names)


def test_preset_agrees_with_its_own_values() -> None:
    given = {"preset": "distribution", "bit_depth": 16, "sample_rate": 44100, "dither": "tpdf"}
    parsed = OutputOptions.parse(given, {})
    assert parsed.resolved() == OutputOptions(16, "int", 44_100, "tpdf", "distribution")
    assert OutputOptions.parse({"dither": "none"}, {}) == OutputOptions()


def test_loudness_is_asked_for_but_is_no_format() -> None:
    """Asking for the meter changes what is measured, never a sample: same format key (one
    live WAV per track and format), but it is kept with the task so its worker measures."""
    asked = OutputOptions.parse({"bit_depth": 24, "loudness": True}, {})
    assert asked.key() == OutputOptions(bit_depth=24).key() != ""
    assert OutputOptions.parse({"loudness": True}, {}).key() == ""
    assert asked.as_dict() == {"bit_depth": 24, "loudness": True}
    assert OutputOptions.parse({"loudness": False}, {}) == OutputOptions()
    assert [asked.measures_loudness(False), OutputOptions().measures_loudness(False)] == [
        True,
        False,
    ]
    assert OutputOptions().measures_loudness(True)  # the operator measures everything
    preset = OutputOptions.parse({"preset": "distribution"}, {})
    assert preset.measures_loudness(False) and preset.resolved().measures_loudness(False)


@needs_two_cpus
def test_split_decode_measures_the_same_loudness(tmp_path: Path, split_counts: list[int]) -> None:
    """Parts decoded in other processes are measured from the written file: same figures."""
    src = lavfi(
        tmp_path / "long.mp3",
        "anoisesrc=c=pink:a=0.2:r=44100:d=130:seed=5",
        "-ac", "2", "-c:a", "libmp3lame", "-b:a", "128k",
    )  # fmt: skip
    whole = convert(src, tmp_path / "one.wav", limits=Limits(parallelism=1)).analysis
    split = convert(src, tmp_path / "two.wav", limits=Limits(parallelism=2)).analysis
    assert split_counts == [1, 2]
    assert (tmp_path / "one.wav").read_bytes() == (tmp_path / "two.wav").read_bytes()
    assert whole.integrated_loudness is not None
    assert (split.integrated_loudness, split.loudness_range, split.true_peak_dbtp) == (
        whole.integrated_loudness,
        whole.loudness_range,
        whole.true_peak_dbtp,
    )
