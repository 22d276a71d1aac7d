"""Architecture configuration of the two-path matting network.

The paper (Liu et al., "Towards Enhancing Fine-grained Details for Image Matting") fixes the
topology but leaves channel widths, the fusion operator and most normalisation layers open.
Every such choice is a field here, with the paper section it fills in, so a checkpoint can
carry its own architecture and be rebuilt exactly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

from vfxmatte.errors import CheckpointError

#: Total stride of the Semantic Path (ResNet stem + maxpool + 3 strided stages).
STRIDE = 32


@dataclass(frozen=True)
class TCPMattingConfig:
    """Everything needed to rebuild a network; stored in every checkpoint."""

    name: str = "r34"
    #: RGB + one-hot trimap (bg, unknown, fg): paper §3.
    in_channels: int = 6
    #: ResNet blocks per stage; (3, 4, 6, 3) is ResNet-34 (paper §3.1).
    encoder_layers: tuple[int, ...] = (3, 4, 6, 3)
    #: Stem and layer1..4 widths; torchvision's (64, 64, 128, 256, 512) loads pretrained weights.
    encoder_widths: tuple[int, ...] = (64, 64, 128, 256, 512)
    #: Decoder stage widths at strides 16, 8, 4, 2: the "mirror structure of the encoder" (§3.1).
    decoder_widths: tuple[int, ...] = (256, 128, 64, 32)
    #: Conv layers on each U-Net skip connection: the paper places two (§3.1).
    skip_convs: int = 2
    #: Normalisation after every conv of decoder, skips and TCP (§4.1 says batch norm in the TCP;
    #: "group" is offered for small-batch fine-tuning). The encoder always uses batch norm so
    #: torchvision weights load.
    norm: Literal["batch", "group"] = "batch"
    #: TCP width at full resolution (§3.2 leaves it open; 32 is the measured paper-size choice).
    tcp_channels: int = 32
    #: Residual blocks of the spatial feature extraction unit: two (§3.2, Fig. 3).
    tcp_res_blocks: int = 2
    #: Which Semantic Path feature the FFU borrows: "layer1" (the 2nd encoder stage, stride 4)
    #: is our reading of "the second layer in the U-Net semantic path" (§3.2); "stem" is stride 2.
    ffu_source: Literal["stem", "layer1"] = "layer1"
    #: How the FFU merges the w_c-weighted SP features with TCP features (§3.2 leaves it open):
    #: "concat" (then the refinement unit's first conv mixes them) or "add".
    fusion: Literal["concat", "add"] = "concat"
    #: Initial value of the learnable scalar w_c (§3.2). 1.0 rather than a small value: an earlier
    #: CPU experiment with 0.1 saw w_c never move and the TCP contribute almost nothing.
    w_c_init: float = 1.0
    #: Semantic Path input downsampling (not in the paper, which runs both paths at full
    #: resolution): 1 = the paper; 2 or 4 = the SP sees the frame average-pooled by that factor
    #: and its logit is bilinearly upsampled, while the TCP stays at full resolution, the split
    #: the paper's design argues for (§3.2: the TCP restores the detail that downsampling loses).
    #: Cuts the SP's cost by its square; the network stride becomes 32 x this factor.
    sp_downsample: int = 1

    def __post_init__(self) -> None:
        if self.sp_downsample not in (1, 2, 4):
            raise CheckpointError(f"sp_downsample must be 1, 2 or 4, got {self.sp_downsample!r}")

    @property
    def stride(self) -> int:
        """Pixels that inputs are padded to and tiles aligned to: the SP's stride on the frame."""
        return STRIDE * self.sp_downsample

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> "TCPMattingConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise CheckpointError(f"{source}: unknown architecture field(s) {', '.join(unknown)}")
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise CheckpointError(f"{source}: invalid architecture config ({exc})") from exc

    def diff(self, other: "TCPMattingConfig", ignore: frozenset[str] = frozenset()) -> list[str]:
        """Human-readable list of fields that differ, e.g. ``["tcp_channels: 32 != 16"]``,
        leaving out the fields named in ``ignore``."""
        a, b = self.to_dict(), other.to_dict()
        return [f"{k}: {a[k]!r} != {b[k]!r}" for k in a if a[k] != b[k] and k not in ignore]


#: The paper's network: ResNet-34 encoder, 32-channel TCP (~25 M parameters).
R34 = TCPMattingConfig()

#: CPU-friendly variant: ResNet-18 block layout at half width, 16-channel TCP. Same two-path
#: design; ~1/4 of the FLOPs of r34. The shipped starter weights use it.
SMALL = TCPMattingConfig(
    name="small",
    encoder_layers=(2, 2, 2, 2),
    encoder_widths=(32, 32, 64, 128, 256),
    decoder_widths=(128, 64, 32, 32),
    tcp_channels=16,
)

#: Test-sized variant: one block per stage, narrow; runs in milliseconds.
TINY = TCPMattingConfig(
    name="tiny",
    encoder_layers=(1, 1, 1, 1),
    encoder_widths=(8, 8, 16, 16, 32),
    decoder_widths=(16, 16, 8, 8),
    tcp_channels=8,
)

#: ``small`` with the Semantic Path on a half-resolution input (``sp_downsample`` 2): the same
#: tensors as ``small`` (so it warm-starts from the starter weights), 46 instead of 95 GFLOP
#: per megapixel. Needs training in that mode: the starter weights run this way unadapted lose
#: badly (held-out SAD 6.27 -> 8.24).
SMALL_SP2 = replace(SMALL, name="small_sp2", sp_downsample=2)

VARIANTS: dict[str, TCPMattingConfig] = {c.name: c for c in (R34, SMALL, TINY, SMALL_SP2)}

#: Architecture fields that do not change any tensor's shape: a checkpoint may initialise a
#: network that differs from it only in these (e.g. ``small`` -> ``small_sp2``).
SHAPE_FREE_FIELDS = frozenset({"name", "sp_downsample", "w_c_init"})
