"""Architecture configuration of the two-path matting network.

The paper (Liu et al., "Towards Enhancing Fine-grained Details for Image Matting") fixes the
topology but leaves channel widths, the fusion operator and most normalisation layers open.
Every such choice is a field here, with the paper section it fills in, so a checkpoint can
carry its own architecture and be rebuilt exactly.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal, get_args

from vfxmatte.errors import ArchitectureError, UnknownVariantError

#: Total stride of the Semantic Path (ResNet stem + maxpool + 3 strided stages, §3.1): inputs
#: are padded to a multiple of it and tiles aligned to it.
STRIDE = 32

Norm = Literal["batch", "group"]
FfuSource = Literal["stem", "layer1"]
Fusion = Literal["concat", "add"]

#: Fields whose value is one of a fixed set, and the set.
_CHOICES = {"norm": get_args(Norm), "ffu_source": get_args(FfuSource), "fusion": get_args(Fusion)}
#: Fields that are sequences of a fixed length: ResNet stages (§3.1), its stem + stages, and
#: the decoder stages at strides 16, 8, 4, 2.
_LENGTHS = {"encoder_layers": 4, "encoder_widths": 5, "decoder_widths": 4}
#: Fields that earlier checkpoints store and this network no longer has, with the one value
#: that means what the network now does. ``sp_downsample`` 1: the Semantic Path sees the
#: frame at full resolution, as in the paper (§3.1).
_LEGACY_FIELDS = {"sp_downsample": 1}
#: Bounds of the integer fields (each entry of a sequence field): far beyond any network worth
#: building (the paper's widest layer is 512), so absurd metadata is refused before a network
#: of it is allocated. ``in_channels`` is what the engine feeds: RGB + one-hot trimap (§3).
_INT_BOUNDS = {
    "in_channels": (6, 6),
    "encoder_layers": (1, 64),
    "encoder_widths": (1, 4096),
    "decoder_widths": (1, 4096),
    "skip_convs": (0, 16),
    "tcp_channels": (1, 1024),
    "tcp_res_blocks": (0, 64),
}


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
    norm: Norm = "batch"
    #: TCP width at full resolution (§3.2 leaves it open; 32 for the paper-size network).
    tcp_channels: int = 32
    #: Residual blocks of the spatial feature extraction unit: two (§3.2, Fig. 3).
    tcp_res_blocks: int = 2
    #: Which Semantic Path feature the FFU borrows: "layer1" (the 2nd encoder stage, stride 4)
    #: is our reading of "the second layer in the U-Net semantic path" (§3.2); "stem" is stride 2.
    ffu_source: FfuSource = "layer1"
    #: How the FFU merges the w_c-weighted SP features with TCP features (§3.2 leaves it open):
    #: "concat" (then the refinement unit's first conv mixes them) or "add".
    fusion: Fusion = "concat"
    #: Initial value of the learnable scalar w_c (§3.2). 1.0 rather than a small value: with a
    #: small start w_c can stay near it and the TCP contribute almost nothing.
    w_c_init: float = 1.0

    def __post_init__(self) -> None:
        for name, choices in _CHOICES.items():
            value = getattr(self, name)
            if value not in choices:
                raise ArchitectureError(f"{name}: {value!r} is not one of {', '.join(choices)}")
        for name, length in _LENGTHS.items():
            value = getattr(self, name)
            if not isinstance(value, (tuple, list)) or len(value) != length:
                raise ArchitectureError(f"{name}: needs {length} entries, got {value!r}")
        for name, (lo, hi) in _INT_BOUNDS.items():
            value = getattr(self, name)
            for v in value if isinstance(value, (tuple, list)) else (value,):
                if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                    bound = f"{lo}" if lo == hi else f"a whole number from {lo} to {hi}"
                    raise ArchitectureError(f"{name}: {value!r} is not {bound}")
        if isinstance(self.w_c_init, bool) or not isinstance(self.w_c_init, (int, float)) or not math.isfinite(self.w_c_init):
            raise ArchitectureError(f"w_c_init: {self.w_c_init!r} is not a finite number")

    @property
    def stride(self) -> int:
        """Pixels that inputs are padded to and tiles aligned to: the Semantic Path's stride."""
        return STRIDE

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> "TCPMattingConfig":
        """The config a stored dict describes (a checkpoint's header, a training config).

        A legacy field (one earlier checkpoints store) is accepted only with the value that
        means what the network does now, and then dropped.

        Raises:
            ArchitectureError: ``source: ...`` naming an unknown field, a legacy field with
                another value, or an invalid value.
        """
        data = dict(data)
        for name, value in _LEGACY_FIELDS.items():
            stored = data.pop(name, value)
            if stored != value:
                raise ArchitectureError(
                    f"{source}: {name}: {stored!r} is not supported (a legacy field; only {value!r} loads)"
                )
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ArchitectureError(f"{source}: unknown architecture field(s) {', '.join(unknown)}")
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise ArchitectureError(f"{source}: invalid architecture config ({exc})") from exc
        except ArchitectureError as exc:
            raise ArchitectureError(f"{source}: {exc}") from exc

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

VARIANTS: dict[str, TCPMattingConfig] = {c.name: c for c in (R34, SMALL, TINY)}

#: Architecture fields that do not change any tensor's shape: a checkpoint may initialise a
#: network that differs from it only in these (a renamed fine-tune, another w_c start).
SHAPE_FREE_FIELDS = frozenset({"name", "w_c_init"})


def variant(name: str) -> TCPMattingConfig:
    """The built-in architecture called ``name`` (a key of :data:`VARIANTS`).

    Raises:
        UnknownVariantError: ``name`` is not a built-in variant; the message lists them.
    """
    try:
        return VARIANTS[name]
    except (KeyError, TypeError):
        raise UnknownVariantError(
            f"unknown model variant '{name}' (choose from {', '.join(VARIANTS)})", str(name), tuple(VARIANTS)
        ) from None
