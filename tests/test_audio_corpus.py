"""The engine against the whole source corpus, with the newest FFmpeg's CLI as the oracle.

Every corpus file (tests/audiogen.py) is converted with the default options and compared
sample for sample, every codec bit-identical, with ``ffmpeg -f <raw>`` of FFmpeg 9
(audiogen.ORACLE) in the format the engine's rules pick; then forced bit depths and float,
resampling, the WAV header layout, tags, clipping, the analysis block, RF64, the parallel
decode of long MP3s and the gapless end of MP4s. Outputs are read back by independent readers:
``wave``, ``soundfile``, ``ffprobe`` and the strict chunk walker in audiogen.

Each distinct conversion runs once per module and each oracle decode is batched into one
ffmpeg run, because starting the CLI costs ~0.2 s and many tests look at the same output.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import subprocess
import wave
from pathlib import Path
from typing import Any, NamedTuple

import av
import numpy as np
import pytest
import soundfile

from wavforge.audio import convert
from wavforge.audio.options import Limits, OutputOptions

from audiogen import (
    CORPUS,
    ENCODING_RAW,
    INFO_IDS,
    KSDATAFORMAT_FLOAT,
    KSDATAFORMAT_PCM,
    LONG_MP3,
    ORACLE,
    RAW_WIDTH,
    SOURCES,
    Corpus,
    Source,
    WavFile,
    extensible,
    ffmpeg_pcm,
    ffprobe,
    info_tags,
    make_float_edges,
    read_wav,
    samples,
)
from conftest import needs_two_cpus
from hostile import flac_silence

# --------------------------------------------------------------------------- comparing samples

FULL_SCALE = {"s16le": 2.0**15, "s24le": 2.0**23, "s32le": 2.0**31, "f32le": 1.0}
BITS = {"pcm_s16le": 16, "pcm_s24le": 24, "pcm_s32le": 32, "pcm_f32le": 32}
SOUNDFILE_SUBTYPE = {
    "pcm_s16le": "PCM_16",
    "pcm_s24le": "PCM_24",
    "pcm_s32le": "PCM_32",
    "pcm_f32le": "FLOAT",
}
WAVE_FORMAT_PCM, WAVE_FORMAT_IEEE_FLOAT, WAVE_FORMAT_EXTENSIBLE = 1, 3, 0xFFFE
ANALYSIS_KEYS = {
    "sourceCodec",
    "sourceBitRate",
    "sourceSampleRate",
    "sourceChannels",
    "duration",
    "frames",
    "outputEncoding",
    "outputSampleRate",
    "outputChannels",
    "outputBitDepth",
    "outputSampleFormat",
    "peakDbfs",
    "clippedSamples",
    "sha256",
    "sourceLossy",
    "integratedLoudness",
    "loudnessRange",
    "truePeakDbtp",
    "warnings",
}


def assert_same_samples(actual: bytes, expected: bytes, raw: str, channels: int) -> None:
    """Bit-identical to the oracle, every codec; the message says where it first differs."""
    if actual == expected:
        return
    width = RAW_WIDTH[raw] * channels
    assert len(actual) == len(expected), (
        f"{len(actual) // width} frames, ffmpeg decodes {len(expected) // width}"
    )
    diff = np.abs(
        samples(actual, raw, channels).astype(np.float64)
        - samples(expected, raw, channels).astype(np.float64)
    )
    first = int(np.argmax(diff.max(axis=1) > 0))
    pytest.fail(
        f"not bit-identical to ffmpeg: {np.count_nonzero(diff)} samples differ, "
        f"the first at frame {first}, max diff {diff.max()}"
    )


# --------------------------------------------------------------------------- conversions


class Case(NamedTuple):
    """One conversion: a corpus source plus the options and limits it is converted with."""

    source_id: str
    options: OutputOptions | None = None
    limits: Limits | None = None

    @property
    def source(self) -> Source:
        return SOURCES[self.source_id]

    @property
    def encoding(self) -> str:
        """The output encoding the engine's rules demand for this case."""
        options = self.options or OutputOptions()
        if options.sample_format == "float":
            return "pcm_f32le"
        if options.bit_depth is not None:
            return f"pcm_s{options.bit_depth}le"
        return self.source.encoding

    @property
    def raw(self) -> str:
        return ENCODING_RAW[self.encoding]

    @property
    def rate(self) -> int:
        return (self.options or OutputOptions()).sample_rate or self.source.rate

    @property
    def label(self) -> str:
        parts = [self.source_id]
        if self.options is not None:
            parts += [f"{key}={value}" for key, value in self.options.as_dict().items()]
        if self.limits is not None:
            defaults = vars(Limits())
            parts += [f"{k}={v}" for k, v in vars(self.limits).items() if v != defaults[k]]
        return ",".join(parts)


class Converted(NamedTuple):
    case: Case
    src: Path
    path: Path
    result: Any

    @property
    def wav(self) -> WavFile:
        return _read_wav_cached(self.path)

    def samples(self) -> np.ndarray:
        """The data chunk as an (n, channels) array of the output's sample type."""
        return samples(self.wav.data, self.case.raw, self.wav.channels)


@functools.cache
def _read_wav_cached(path: Path) -> WavFile:
    return read_wav(path)


class Converter:
    """Runs each distinct conversion once per module; a failure is re-raised to every user."""

    def __init__(self, corpus: Corpus, directory: Path) -> None:
        self.corpus = corpus
        self.directory = directory
        self._done: dict[Case, Converted | Exception] = {}

    def __call__(self, case: Case) -> Converted:
        if case not in self._done:
            self._done[case] = self._convert(case)
        outcome = self._done[case]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def oracle(self, case: Case, raw: str | None = None) -> bytes:
        """ffmpeg's decode of the case's source, in the case's raw format unless ``raw``."""
        return self.corpus.oracle(case.source_id, raw or case.raw)

    def _convert(self, case: Case) -> Converted | Exception:
        src = self.corpus[case.source_id]
        dst = self.directory / f"{len(self._done):03d}-{case.source_id}.wav"
        kwargs: dict[str, Any] = {}  # only what the case sets
        if case.options is not None:
            kwargs["options"] = case.options
        if case.limits is not None:
            kwargs["limits"] = case.limits
        try:
            result = convert(src, dst, **kwargs)
        except Exception as exc:
            return exc
        return Converted(case, src, dst, result)


def params(*cases: Case) -> list[Any]:
    """pytest params named after their case; a case listed twice runs once."""
    unique = {case.label: case for case in cases}
    return [pytest.param(case, id=label) for label, case in unique.items()]


def cases_of(*lists: list[Any]) -> list[Case]:
    return [param.values[0] for group in lists for param in group]


RF64 = Limits(rf64_threshold_bytes=100_000)
FLOAT = OutputOptions(bit_depth=32, sample_format="float")
INT16, INT24, INT32 = (OutputOptions(bit_depth=depth) for depth in (16, 24, 32))

ALL_SOURCES = params(*(Case(source.id) for source in CORPUS))
TAGGED_SOURCES = params(*(Case(source.id) for source in CORPUS if source.tags))
# One of each kind of container for the (slower, one process each) ffprobe tag check.
TAGGED_FOR_FFPROBE = params(
    Case("mp3-id3v23-apic"),
    Case("aac-stereo-44100"),
    Case("opus-stereo-48000"),
    Case("flac-16-stereo-44100"),
    Case("wav-s16-stereo-44100"),
)
# Outputs of every shape: 16/24/32-bit int and float, mono to 6 channels, RF64, resampled.
OUTPUT_SHAPES = params(
    Case("mp3-cbr-stereo-44100"),
    Case("mp3-vbr-mono-22050"),
    Case("flac-24-stereo-96000"),
    Case("aiff-s24-mono-48000"),
    Case("wav-s32-stereo-44100"),
    Case("wav-f32-stereo-44100"),
    Case("flac-16-6ch-48000"),
    Case("wav-f32-6ch-48000"),
    Case("mp3-loud", FLOAT),
    Case("aac-stereo-44100", INT24),
    Case("mp3-cbr-stereo-44100", limits=RF64),
    Case("flac-24-stereo-96000", limits=RF64),
    Case("wav-f32-6ch-48000", limits=RF64),
    Case("mp3-cbr-stereo-44100", OutputOptions(sample_rate=48000)),
)
FORCED = params(
    # 24-bit int: lossy, lossless 16-bit, float beyond full scale (clamps), Opus, 6 channels.
    Case("mp3-cbr-stereo-44100", INT24),
    Case("flac-16-stereo-44100", INT24),
    Case("wav-f32-loud", INT24),
    Case("opus-stereo-48000", INT24),
    Case("flac-16-6ch-48000", INT24),
    # 32-bit int: lossy mono MPEG-2, 24-bit ALAC, float.
    Case("mp3-vbr-mono-22050", INT32),
    Case("alac-24-stereo-48000", INT32),
    Case("wav-f32-stereo-44100", INT32),
    # 32-bit float: lossy with overs (kept above 1.0), 24-bit FLAC, 16-bit WAV, Vorbis.
    Case("mp3-loud", FLOAT),
    Case("flac-24-stereo-96000", FLOAT),
    Case("wav-s16-stereo-44100", FLOAT),
    Case("vorbis-stereo-44100", FLOAT),
    # Down to 16-bit: from 24-bit FLAC and ALAC, from loud float (clamps), from AAC.
    Case("flac-24-stereo-96000", INT16),
    Case("alac-24-stereo-48000", INT16),
    Case("wav-f32-loud", INT16),
    Case("aac-stereo-44100", INT16),
)
RESAMPLED = params(
    Case("mp3-cbr-stereo-44100", OutputOptions(sample_rate=48000)),
    Case("mp3-cbr-stereo-48000", OutputOptions(sample_rate=22050)),
    Case("flac-24-stereo-96000", OutputOptions(sample_rate=44100)),
    Case("wav-f32-stereo-44100", OutputOptions(sample_rate=96000)),
    Case("opus-mono-48000", OutputOptions(bit_depth=24, sample_rate=32000)),
)
CLIPPING = params(
    Case("mp3-loud"),
    Case("mp3-loud", INT24),
    Case("wav-f32-loud", INT16),
    Case("wav-f32-loud", INT32),
)
RF64_CASES = params(
    Case("mp3-cbr-stereo-44100", limits=RF64),
    Case("flac-24-stereo-96000", limits=RF64),
    Case("wav-f32-6ch-48000", limits=RF64),
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return Corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def converted(corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> Converter:
    """The conversion cache, with every oracle this module compares against decoded up front."""
    everything = cases_of(ALL_SOURCES, OUTPUT_SHAPES, FORCED, RESAMPLED, CLIPPING)
    corpus.build(case.source_id for case in everything)
    wanted = {(case.source_id, case.raw) for case in everything}
    wanted |= {(case.source_id, "f32le") for case in cases_of(RESAMPLED, CLIPPING)}
    corpus.prefetch(wanted)
    return Converter(corpus, tmp_path_factory.mktemp("converted"))


# --------------------------------------------------------------------------- the corpus itself


def decoded_depth(path: Path) -> tuple[str, int]:
    """(decoder sample format, bits actually used) from the first decoded frames.

    24-bit FLAC/ALAC/PCM decode to s32 with the low byte always zero; 32-bit PCM does not.
    """
    with av.open(str(path)) as container:
        frames = [frame for _, frame in zip(range(8), container.decode(audio=0), strict=False)]
    fmt = frames[0].format.name.rstrip("p")
    if fmt != "s32":
        return fmt, {"s16": 16, "flt": 32}.get(fmt, 0)
    low_bytes = np.concatenate([frame.to_ndarray().ravel() & 0xFF for frame in frames])
    return fmt, 24 if not low_bytes.any() else 32


@pytest.mark.parametrize("case", ALL_SOURCES)
def test_corpus_file_is_what_it_claims(corpus: Corpus, case: Case) -> None:
    """Guards the generators: codec, rate, channels, bit depth, tags, Xing header.

    PyAV reads the metadata (one ffprobe run per file would cost ~0.2 s each); that the ffmpeg
    CLI decodes every file is proven by the oracle decodes.
    """
    source = case.source
    path = corpus[source.id]
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.codec.canonical_name == source.codec
        assert (stream.rate, stream.channels) == (source.rate, source.channels)
        tags = {**container.metadata, **stream.metadata}
    tags = {key.lower(): value for key, value in tags.items()}
    assert {key: tags.get(key) for key in source.tags} == dict(source.tags)
    if not source.lossy:
        fmt, bits = decoded_depth(path)
        assert bits == BITS[source.encoding]
        assert (fmt == "flt") == (source.encoding == "pcm_f32le")
    if source.codec == "mp3":
        # FFmpeg's mp3 muxer writes the Xing header ("Info" when CBR) that carries gapless info.
        head = path.read_bytes()[:16384]
        assert (b"Xing" if "-vbr-" in source.id else b"Info") in head


# --------------------------------------------------------------------------- bit exactness


@pytest.mark.parametrize("case", ALL_SOURCES)
def test_default_output_matches_ffmpeg(converted: Converter, case: Case) -> None:
    """Default depth per the rules (16 for lossy, the source's for lossless), ffmpeg's samples."""
    out = converted(case)
    source = case.source
    wav = out.wav
    assert (wav.rate, wav.channels, wav.bits) == (source.rate, source.channels, BITS[case.encoding])
    assert_same_samples(wav.data, converted.oracle(case), case.raw, source.channels)
    frames = len(wav.data) // (RAW_WIDTH[case.raw] * source.channels)
    result = out.result
    assert (result.frames, result.sample_rate, result.channels) == (
        frames,
        source.rate,
        source.channels,
    )
    assert result.bytes_written == out.path.stat().st_size
    assert result.analysis.output_encoding == case.encoding


GAPLESS = params(
    *(Case(s.id) for s in CORPUS if s.codec in {"mp3", "opus", "vorbis"} or not s.lossy)
)


@pytest.mark.parametrize("case", GAPLESS)
def test_gapless_sources_keep_their_exact_length(converted: Converter, case: Case) -> None:
    """Encoder delay and padding are gone: exactly the synthesised number of frames.

    AAC in MP4 from FFmpeg's own encoder is not sample-exact even in the CLI, so it is left
    out (its length is still checked against the oracle above).
    """
    source = case.source
    assert converted(case).result.frames == round(source.seconds * source.rate)


@pytest.mark.parametrize("case", FORCED)
def test_forced_format_matches_ffmpeg(converted: Converter, case: Case) -> None:
    """bit_depth / sample_format give ffmpeg's samples for ``-f s16le|s24le|s32le|f32le``."""
    out = converted(case)
    source = case.source
    assert out.wav.bits == BITS[case.encoding]
    expected = converted.oracle(case)
    assert_same_samples(out.wav.data, expected, case.raw, source.channels)
    assert out.result.analysis.output_encoding == case.encoding


@pytest.mark.parametrize("case", RESAMPLED)
def test_resampling_gives_the_rate_and_length(converted: Converter, case: Case) -> None:
    """Right rate, round(n * out / in) frames (+-1), the asked depth, and still the music."""
    out = converted(case)
    source = case.source
    reference = samples(converted.oracle(case, "f32le"), "f32le", source.channels)
    expected_frames = round(len(reference) * case.rate / source.rate)
    assert out.wav.rate == out.result.sample_rate == case.rate
    assert out.wav.bits == BITS[case.encoding]
    assert abs(out.result.frames - expected_frames) <= 1
    assert len(out.wav.data) == out.result.frames * source.channels * RAW_WIDTH[case.raw]
    # Same loudness within a few percent: garbage, silence or a wrong rate would not be.
    ours = out.samples().astype(np.float64) / FULL_SCALE[case.raw]
    ratio = np.sqrt(np.mean(ours**2)) / np.sqrt(np.mean(reference.astype(np.float64) ** 2))
    assert 0.85 < ratio < 1.15
    assert out.result.analysis.output_sample_rate == case.rate
    assert out.result.analysis.source_sample_rate == source.rate


# --------------------------------------------------------------------------- readers agree


EVERY_OUTPUT = params(*cases_of(ALL_SOURCES, OUTPUT_SHAPES, FORCED, RESAMPLED, CLIPPING))
# What Python's wave module can read: classic RIFF (not RF64), 16-bit, mono or stereo.
PLAIN_PCM_OUTPUTS = [
    param
    for param in EVERY_OUTPUT
    if param.values[0].encoding == "pcm_s16le"
    and param.values[0].source.channels <= 2
    and param.values[0].limits is None
]


@pytest.mark.parametrize("case", PLAIN_PCM_OUTPUTS)
def test_wave_module_reads_16bit_output(converted: Converter, case: Case) -> None:
    """Plain 16-bit PCM with <= 2 channels stays readable by Python's own ``wave``."""
    out = converted(case)
    with wave.open(str(out.path), "rb") as reader:
        assert reader.getcomptype() == "NONE"
        assert reader.getsampwidth() == 2
        assert reader.getnchannels() == case.source.channels
        assert reader.getframerate() == case.rate
        assert reader.getnframes() == out.result.frames
        assert reader.readframes(reader.getnframes()) == out.wav.data


@pytest.mark.parametrize("case", EVERY_OUTPUT)
def test_soundfile_reads_output(converted: Converter, case: Case) -> None:
    """libsndfile agrees on frames, rate, channels, subtype and every sample."""
    out = converted(case)
    info = soundfile.info(str(out.path))
    assert (info.frames, info.samplerate, info.channels) == (
        out.result.frames,
        case.rate,
        case.source.channels,
    )
    assert info.subtype == SOUNDFILE_SUBTYPE[case.encoding]
    if case.limits is RF64:
        assert info.format == "RF64"
    dtype = {"s16le": "int16", "f32le": "float32"}.get(case.raw, "int32")
    data, rate = soundfile.read(str(out.path), dtype=dtype, always_2d=True)
    ours = out.samples()
    if case.raw == "s24le":
        ours = ours << 8  # libsndfile hands out 24-bit samples left-justified in int32
    assert rate == case.rate
    assert np.array_equal(data, ours)


@pytest.mark.parametrize("case", OUTPUT_SHAPES)
def test_ffprobe_reads_output(converted: Converter, case: Case) -> None:
    """FFmpeg itself sees the intended PCM codec, depth, rate, channels and length."""
    out = converted(case)
    stream = ffprobe(out.path)["streams"][0]
    assert stream["codec_name"] == case.encoding
    assert int(stream["sample_rate"]) == case.rate
    assert stream["channels"] == case.source.channels
    assert int(stream["bits_per_sample"]) == BITS[case.encoding]
    assert float(stream["duration"]) == pytest.approx(out.result.frames / case.rate, abs=1e-3)


# --------------------------------------------------------------------------- header layout


def expected_layout(encoding: str, channels: int) -> tuple[int, bytes | None, bool]:
    """(format tag, extensible subformat or None, fact chunk required) per the engine's rules."""
    if encoding == "pcm_f32le":
        if channels > 2:
            return WAVE_FORMAT_EXTENSIBLE, KSDATAFORMAT_FLOAT, True
        return WAVE_FORMAT_IEEE_FLOAT, None, True
    if BITS[encoding] > 16 or channels > 2:
        return WAVE_FORMAT_EXTENSIBLE, KSDATAFORMAT_PCM, False
    return WAVE_FORMAT_PCM, None, False


@pytest.mark.parametrize("case", EVERY_OUTPUT)
def test_header_layout(converted: Converter, case: Case) -> None:
    """Tag 1 for <=16-bit <=2 ch, 0xFFFE otherwise, tag 3 + fact for float; data last."""
    out = converted(case)
    wav = out.wav
    channels = case.source.channels
    tag, subformat, needs_fact = expected_layout(case.encoding, channels)
    fmt = wav.chunks["fmt "]
    assert wav.format_tag == tag
    assert wav.bits == BITS[case.encoding]
    if tag == WAVE_FORMAT_PCM:
        assert len(fmt) == 16
    elif tag == WAVE_FORMAT_IEEE_FLOAT:
        assert len(fmt) in (16, 18)
    else:
        ext = extensible(fmt)
        assert ext.subformat == subformat
        assert ext.valid_bits == BITS[case.encoding]
        assert bin(ext.channel_mask).count("1") == channels
        if channels <= 2:
            assert ext.channel_mask == (0x4 if channels == 1 else 0x3)  # FC, or FL+FR
    if needs_fact:
        count = int.from_bytes(wav.chunks["fact"][:4], "little")
        if "ds64" in wav.chunks:  # RF64 moves the count into ds64 and leaves -1 behind
            assert count in (0xFFFFFFFF, out.result.frames)
        else:
            assert count == out.result.frames
    assert list(wav.chunks)[-1] == "data"
    assert len(wav.data) == out.result.frames * channels * BITS[case.encoding] // 8


# --------------------------------------------------------------------------- tags


@pytest.mark.parametrize("case", TAGGED_SOURCES)
def test_tags_reach_list_info(converted: Converter, case: Case) -> None:
    """title/artist/album/genre/date/comment land in LIST/INFO as UTF-8, before the data."""
    wav = converted(case).wav
    names = list(wav.chunks)
    assert "LIST" in names and names.index("LIST") < names.index("data")
    info = info_tags(wav.chunks["LIST"])
    expected = {INFO_IDS[key]: value for key, value in case.source.tags.items()}
    assert {key: info.get(key) for key in expected} == expected


@pytest.mark.parametrize("case", TAGGED_FOR_FFPROBE)
def test_ffprobe_shows_output_tags(converted: Converter, case: Case) -> None:
    """Another reader decodes the same tags from the WAV, non-ASCII intact."""
    tags = ffprobe(converted(case).path)["format"].get("tags", {})
    tags = {key.lower(): value for key, value in tags.items()}
    assert {key: tags.get(key) for key in case.source.tags} == dict(case.source.tags)


@pytest.mark.parametrize("case", params(Case("mp3-cbr-stereo-44100"), Case("flac-24-stereo-96000")))
def test_untagged_source_gets_no_invented_tags(converted: Converter, case: Case) -> None:
    wav = converted(case).wav
    info = info_tags(wav.chunks["LIST"]) if "LIST" in wav.chunks else {}
    assert not set(info) & set(INFO_IDS.values())


# --------------------------------------------------------------------------- clipping


def clamped_count(floats: np.ndarray, raw: str) -> int:
    """How many samples an integer conversion of ``floats`` to ``raw`` has to clamp.

    Counted per sample (not per frame), after scaling and rounding as swresample does: 0.99999
    rounds to 32768 and is clamped at 16 bits, while -1.00001 rounds to -32768 and is not.
    24-bit output is the top of a 32-bit conversion, so it clamps where 32-bit does.
    """
    scale = FULL_SCALE["s16le" if raw == "s16le" else "s32le"]
    scaled = np.rint(floats.astype(np.float64) * scale)
    return int(np.count_nonzero((scaled > scale - 1) | (scaled < -scale)))


def level_dbfs(values: np.ndarray, raw: str) -> float:
    return 20 * math.log10(float(np.abs(values.astype(np.float64)).max()) / FULL_SCALE[raw])


@pytest.mark.parametrize("case", CLIPPING)
def test_integer_output_clamps_and_counts(converted: Converter, case: Case) -> None:
    """Overs become exactly +-full scale (never wrap) and are counted in clipped_samples.

    peak_dbfs reports the decoded signal's peak before clamping (above 0 dBFS here), so it
    tells how hard the source clips.
    """
    out = converted(case)
    floats = samples(converted.oracle(case, "f32le"), "f32le", case.source.channels)
    ours = out.samples().astype(np.int64)
    top = {"s16le": 2**15, "s24le": 2**23, "s32le": 2**31}[case.raw]
    assert np.all(ours[floats >= 1.0] == top - 1)
    assert np.all(ours[floats < -1.0] == -top)
    assert np.count_nonzero(ours == top - 1) > 100
    assert np.count_nonzero(ours == -top) > 100
    expected = clamped_count(floats, case.raw)
    assert expected > 100
    assert out.result.analysis.clipped_samples == expected
    assert out.result.analysis.peak_dbfs == pytest.approx(level_dbfs(floats, "f32le"), abs=0.01)
    assert out.result.analysis.peak_dbfs > 0


@pytest.mark.parametrize("depth", [16, 24, 32])
def test_float_edge_values_match_ffmpeg(tmp_path: Path, depth: int) -> None:
    """+-1.0, ties, overs, -0.0 and denormals convert exactly as swresample converts them."""
    src = make_float_edges(tmp_path / "edges.wav")
    raw = f"s{depth}le"
    result = convert(src, tmp_path / "out.wav", options=OutputOptions(bit_depth=depth))
    expected = ffmpeg_pcm(src, raw)
    assert_same_samples(read_wav(tmp_path / "out.wav").data, expected, raw, 2)
    floats = samples(ffmpeg_pcm(src, "f32le"), "f32le", 2)
    assert result.analysis.clipped_samples == clamped_count(floats, raw)


def test_float_output_keeps_overs(converted: Converter) -> None:
    """Float WAV in, float WAV out: values above 1.0 survive and nothing counts as clipped."""
    out = converted(Case("wav-f32-loud"))
    assert np.abs(out.samples()).max() > 1.2
    assert out.result.analysis.clipped_samples == 0
    assert out.result.analysis.peak_dbfs > 1.5


@pytest.mark.parametrize("case", params(Case("mp3-cbr-stereo-44100"), Case("flac-24-stereo-96000")))
def test_normal_levels_clip_nothing(converted: Converter, case: Case) -> None:
    assert converted(case).result.analysis.clipped_samples == 0


# --------------------------------------------------------------------------- analysis


@pytest.mark.parametrize(
    "case",
    params(
        Case("mp3-cbr-stereo-44100"),
        Case("mp3-vbr-mono-8000"),
        Case("aac-stereo-44100"),
        Case("flac-24-stereo-96000"),
        Case("wav-f32-6ch-48000"),
        Case("alac-16-stereo-44100", FLOAT),
        Case("opus-mono-48000", INT32),
        Case("mp3-cbr-stereo-48000", OutputOptions(sample_rate=22050)),
    ),
)
def test_analysis_describes_source_and_output(converted: Converter, case: Case) -> None:
    """Every analysis field, checked against the source spec and the output bytes."""
    out = converted(case)
    source = case.source
    analysis = out.result.analysis
    assert analysis.source_codec == source.codec
    assert (analysis.source_sample_rate, analysis.source_channels) == (source.rate, source.channels)
    assert analysis.source_bit_rate is None or analysis.source_bit_rate > 0
    if source.id.startswith("mp3-cbr-"):
        assert analysis.source_bit_rate == int(ffprobe(out.src)["streams"][0]["bit_rate"])
    assert analysis.frames == out.result.frames
    assert analysis.duration == pytest.approx(out.result.frames / case.rate, abs=1e-6)
    assert analysis.output_encoding == case.encoding
    assert (analysis.output_sample_rate, analysis.output_channels) == (case.rate, source.channels)
    assert analysis.output_bit_depth == BITS[case.encoding]
    assert analysis.output_sample_format == ("float" if case.raw == "f32le" else "int")
    assert analysis.peak_dbfs == pytest.approx(level_dbfs(out.samples(), case.raw), abs=0.01)
    assert analysis.clipped_samples == 0
    assert analysis.sha256 == hashlib.sha256(out.path.read_bytes()).hexdigest()
    as_dict = analysis.to_dict()
    assert set(as_dict) >= ANALYSIS_KEYS
    assert as_dict["sha256"] == analysis.sha256
    assert as_dict["outputEncoding"] == case.encoding
    assert as_dict["clippedSamples"] == analysis.clipped_samples
    assert as_dict["sourceLossy"] is case.source.lossy
    assert as_dict["sourceSampleRate"] == source.rate


def test_checksum_can_be_skipped(corpus: Corpus, tmp_path: Path) -> None:
    result = convert(corpus["mp3-cbr-mono-8000"], tmp_path / "out.wav", checksum=False)
    assert result.analysis.sha256 is None
    assert result.analysis.frames == result.frames


def test_silence_has_no_peak(tmp_path: Path) -> None:
    """Digital silence: peak_dbfs is None (not -inf, which JSON cannot carry)."""
    src = flac_silence(tmp_path / "silence.flac", 1.0, rate=44100, channels=2, bits=16)
    result = convert(src, tmp_path / "out.wav")
    assert result.frames == 44100
    assert result.analysis.peak_dbfs is None
    assert result.analysis.clipped_samples == 0


# --------------------------------------------------------------------------- RF64


@pytest.mark.parametrize("case", RF64_CASES)
def test_rf64_above_threshold(converted: Converter, case: Case) -> None:
    """Past the threshold: RF64 + ds64 with true 64-bit sizes, and the same samples as ever."""
    out = converted(case)
    raw = out.path.read_bytes()
    assert raw[:4] == b"RF64" and raw[8:12] == b"WAVE"
    assert int.from_bytes(raw[4:8], "little") == 0xFFFFFFFF
    assert next(iter(out.wav.chunks)) == "ds64"  # the first chunk after WAVE
    riff_size, data_size, frames = np.frombuffer(out.wav.chunks["ds64"][:24], "<u8").tolist()
    assert riff_size == len(raw) - 8
    assert frames == out.result.frames
    assert data_size == len(out.wav.data) > RF64.rf64_threshold_bytes
    data_at = raw.index(b"data")
    assert int.from_bytes(raw[data_at + 4 : data_at + 8], "little") in (0xFFFFFFFF, data_size)
    expected = converted.oracle(case)
    assert_same_samples(out.wav.data, expected, case.raw, case.source.channels)


def test_below_threshold_stays_riff(converted: Converter) -> None:
    out = converted(Case("mp3-cbr-mono-8000", limits=RF64))  # 24 kB of data
    assert out.path.read_bytes()[:4] == b"RIFF"
    assert "ds64" not in out.wav.chunks
    assert out.wav.format_tag == WAVE_FORMAT_PCM


# --------------------------------------------------------------------------- long MP3s


@pytest.fixture(scope="module")
def long_mp3(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    """The long MP3s, encoded side by side in worker processes (LAME is the slow part)."""
    corpus = Corpus(tmp_path_factory.mktemp("long"))
    corpus.build(source.id for source in LONG_MP3)
    return corpus


@needs_two_cpus
@pytest.mark.parametrize("source", [pytest.param(s, id=s.id) for s in LONG_MP3])
def test_parallel_decode_of_long_mp3_is_bit_identical(
    long_mp3: Corpus, tmp_path: Path, split_counts: list[int], source: Source
) -> None:
    """Split across processes, the joins are invisible: ffmpeg's samples, exact length."""
    src = long_mp3[source.id]
    result = convert(src, tmp_path / "out.wav", limits=Limits(parallelism=2))
    assert split_counts == [2]
    assert read_wav(tmp_path / "out.wav").data == ffmpeg_pcm(src, "s16le")
    assert result.frames == round(source.seconds * source.rate)
    assert result.analysis.duration == pytest.approx(source.seconds, abs=1e-4)
    assert sorted(os.listdir(tmp_path)) == ["out.wav"]  # no part files left behind


@needs_two_cpus
def test_parallel_float_decode_is_bit_identical(
    long_mp3: Corpus, tmp_path: Path, split_counts: list[int]
) -> None:
    """Float output shows even a 1-ulp seam that 16-bit rounding could hide."""
    src = long_mp3["long-vbr-mono-48000"]
    convert(src, tmp_path / "out.wav", options=FLOAT, limits=Limits(parallelism=2))
    assert split_counts == [2]
    assert read_wav(tmp_path / "out.wav").data == ffmpeg_pcm(src, "f32le")


# --------------------------------------------------------------------------- gapless MP4

# (file name, encoder arguments, frames the container says the audio has, or None where
# FFmpeg 9 keeps the padding). FFmpeg's AAC encoder pads the last of its 1024-sample frames;
# an MP4 says where the audio ends in its sample table and edit list.
GAPLESS_MP4 = (
    ("edit-list.m4a", ["-c:a", "aac"], 20 * 44100),
    ("quicktime.mov", ["-c:a", "aac"], 20 * 44100),
    ("no-edit-list.m4a", ["-c:a", "aac", "-use_editlist", "0"], 20 * 44100 + 1024),
    ("fragmented.mp4", ["-c:a", "aac", "-movflags", "frag_keyframe+empty_moov"], None),
    ("alac.m4a", ["-c:a", "alac"], 20 * 44100),
)


@pytest.mark.parametrize(("name", "codec", "frames"), GAPLESS_MP4, ids=lambda v: str(v))
def test_mp4_ends_where_the_container_says(
    tmp_path: Path, name: str, codec: list[str], frames: int | None
) -> None:
    """A 20.000 s track is 882,000 frames, not 882,688 (the AAC encoder's padding), as in
    FFmpeg 9; a file without an edit list keeps its priming, a fragmented one its padding."""
    src = tmp_path / name
    sine = "sine=f=997:d=20:r=44100"
    encode = [ORACLE, "-nostdin", "-v", "error", "-f", "lavfi", "-i", sine, "-ac", "2"]
    subprocess.run([*encode, *codec, str(src)], check=True)
    result = convert(src, tmp_path / "out.wav")
    expected = ffmpeg_pcm(src, "s16le")
    assert_same_samples(read_wav(tmp_path / "out.wav").data, expected, "s16le", 2)
    if frames is not None:
        assert result.frames == frames
    else:
        assert result.frames % 1024 == 0 and result.frames > 20 * 44100
