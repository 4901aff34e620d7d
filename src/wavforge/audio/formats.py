"""The output format of one conversion, decided from the request and the decoded source.

CONTRACT §9: by default nothing the source holds is thrown away and nothing is invented —
16-bit from lossy codecs (their decoders produce float, whose precision is an artefact of
the decoder, not of the recording), the source's own depth from lossless ones. The request
may force 16/24/32-bit integer, 32-bit float, or another sample rate.
"""

from __future__ import annotations

from dataclasses import dataclass

from av.audio.layout import AudioLayout

from wavforge.audio.options import OutputOptions

__all__ = ["OutputFormat", "SourceFormat", "channel_mask", "resolve_output"]

# WAVE_FORMAT_EXTENSIBLE speaker bits; FFmpeg's AV_CH_* masks use the same positions.
_SPEAKER_BITS = {
    name: bit
    for bit, name in enumerate(
        [
            "FL",
            "FR",
            "FC",
            "LFE",
            "BL",
            "BR",
            "FLC",
            "FRC",
            "BC",
            "SL",
            "SR",
            "TC",
            "TFL",
            "TFC",
            "TFR",
            "TBL",
            "TBC",
            "TBR",
        ]
    )
}

# av_channel_layout_default(): the layout FFmpeg assumes for a bare channel count.
_DEFAULT_LAYOUTS = {
    1: "mono",
    2: "stereo",
    3: "2.1",
    4: "4.0",
    5: "5.0",
    6: "5.1",
    7: "6.1",
    8: "7.1",
}


@dataclass(frozen=True)
class SourceFormat:
    """What the decoder hands out: its sample format and the precision behind it."""

    codec: str
    sample_format: str  # FFmpeg name without the planar suffix: u8, s16, s32, s64, flt, dbl
    bits_per_raw_sample: int  # 0 when the codec does not say
    lossless: bool
    sample_rate: int
    channels: int
    channel_mask: int
    bit_rate: int | None


@dataclass(frozen=True)
class OutputFormat:
    """The WAV to write: everything the header and the sample converter need."""

    bits: int  # container bits per sample: 16, 24 or 32
    floating: bool
    sample_rate: int
    channels: int
    channel_mask: int  # 0 when the layout is not a standard speaker set
    dither: bool = False  # add TPDF noise of +-1 LSB before rounding to ``bits``
    resampler: str = "swr"  # "swr" (libswresample, as ffmpeg) or "soxr" (very high quality)

    @property
    def width(self) -> int:
        """Bytes per sample."""
        return self.bits // 8

    @property
    def block_align(self) -> int:
        """Bytes per sample frame (one sample of every channel)."""
        return self.width * self.channels

    @property
    def encoding(self) -> str:
        """FFmpeg's codec name for this layout, also used in the task's analysis."""
        return "pcm_f32le" if self.floating else f"pcm_s{self.bits}le"

    def data_bytes(self, seconds: float) -> int:
        """Bytes of sample data ``seconds`` of audio take in this format."""
        return int(seconds * self.sample_rate) * self.block_align


def resolve_output(options: OutputOptions, source: SourceFormat) -> OutputFormat:
    """Apply CONTRACT §9: the request (or its preset) wins, the source decides the rest."""
    options = options.resolved()
    depth, floating = _source_depth(source)
    if options.bit_depth is not None:
        depth, floating = options.bit_depth, False
    if options.sample_format is not None:
        floating = options.sample_format == "float"
    if floating:
        depth = 32
    return OutputFormat(
        bits=depth,
        floating=floating,
        sample_rate=options.sample_rate or source.sample_rate,
        channels=source.channels,
        channel_mask=source.channel_mask,
        dither=options.dither == "tpdf" and not floating and depth < _decoded_bits(source),
        resampler="soxr" if options.preset == "distribution" else "swr",
    )


def _decoded_bits(source: SourceFormat) -> int:
    """Bits of precision in the decoded samples: dither is only for dropping some of them.

    Float decodes (every lossy codec, float PCM) count as more than any integer output.
    """
    if source.sample_format in ("flt", "dbl"):
        return 64
    width = {"u8": 8, "s16": 16, "s32": 32, "s64": 64}.get(source.sample_format, 64)
    raw = source.bits_per_raw_sample
    return raw if 0 < raw < width else width


def _source_depth(source: SourceFormat) -> tuple[int, bool]:
    """The default depth: 16 for lossy codecs, the real precision of lossless ones.

    FFmpeg decodes 24-bit FLAC/ALAC/PCM into 32-bit containers and says how many bits are
    real in ``bits_per_raw_sample``. 8-bit sources are widened to 16 (exactly, and every
    player handles it); 64-bit float is narrowed to 32-bit float, the widest WAV players read.
    """
    if not source.lossless:
        return 16, False
    if source.sample_format in ("flt", "dbl"):
        return 32, True
    if source.sample_format in ("s32", "s64"):
        raw = source.bits_per_raw_sample
        return (24 if 16 < raw <= 24 else 32), False
    return 16, False


def channel_mask(layout: AudioLayout) -> int:
    """The WAVE channel mask of a layout.

    A source without a layout (AIFF, a WAV without a mask) gets FFmpeg's default layout for
    its channel count, as the ``ffmpeg`` command line does; 0 when even that has none.
    """
    mask = _mask(layout)
    default = _DEFAULT_LAYOUTS.get(len(layout.channels))
    if mask is None and default:
        mask = _mask(AudioLayout(default))
    return mask or 0


def _mask(layout: AudioLayout) -> int | None:
    mask = 0
    for channel in layout.channels:
        bit = _SPEAKER_BITS.get(channel.name)
        if bit is None:
            return None
        mask |= 1 << bit
    return mask
