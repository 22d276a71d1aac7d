"""ResNet encoder with torchvision's parameter names (paper §3.1: the Semantic Path's encoder).

Written here rather than imported from torchvision (whose wheel does not import beside the
CPU torch we pin), but with the same module names (``conv1``, ``bn1``, ``layer1.0.conv1`` ...)
so that a torchvision ``resnet18``/``resnet34`` state_dict initialises it directly.

The stem is widened from 3 to ``in_channels`` (6: RGB + one-hot trimap, paper §3) input
channels. :func:`load_torchvision_weights` copies the pretrained RGB filters into the first
three input channels and sets the trimap filters to zero, so the pretrained encoder starts out
computing exactly what it computed on ImageNet and learns to use the trimap from there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import Tensor, nn

from vfxmatte.errors import ArchitectureError, CheckpointError

NormFactory = Callable[[int], nn.Module]


class BasicBlock(nn.Module):
    """torchvision's BasicBlock: two 3x3 convs plus identity (or 1x1 projection) shortcut."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int, norm: NormFactory) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = norm(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = norm(planes)
        self.downsample: nn.Module | None = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes, 1, stride, bias=False), norm(planes)
            )

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNetEncoder(nn.Module):
    """ResNet trunk without the classifier, returning the five stage outputs.

    Returns ``[x1, x2, x3, x4, x5]`` at strides 2, 4, 8, 16, 32 with channels
    ``(widths[0], widths[1], ..., widths[4])``: the stem (conv1/bn1/relu), then layer1..layer4.
    """

    def __init__(
        self,
        layers: Sequence[int],
        widths: Sequence[int],
        in_channels: int,
        norm: NormFactory,
    ) -> None:
        super().__init__()
        if len(layers) != 4 or len(widths) != 5:
            raise ArchitectureError(
                f"encoder: needs 4 layer counts and 5 widths, got {len(layers)} and {len(widths)}"
            )
        self.widths = tuple(widths)
        self.conv1 = nn.Conv2d(in_channels, widths[0], 7, 2, 3, bias=False)
        self.bn1 = norm(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        inplanes = widths[0]
        for i, (n, planes) in enumerate(zip(layers, widths[1:]), start=1):
            stride = 1 if i == 1 else 2
            blocks = [BasicBlock(inplanes, planes, stride, norm)]
            blocks += [BasicBlock(planes, planes, 1, norm) for _ in range(n - 1)]
            setattr(self, f"layer{i}", nn.Sequential(*blocks))
            inplanes = planes

    def forward(self, x: Tensor) -> list[Tensor]:
        x1 = self.relu(self.bn1(self.conv1(x)))  # [B, w0, H/2, W/2]
        x2 = self.layer1(self.maxpool(x1))  # [B, w1, H/4, W/4]
        x3 = self.layer2(x2)  # [B, w2, H/8, W/8]
        x4 = self.layer3(x3)  # [B, w3, H/16, W/16]
        x5 = self.layer4(x4)  # [B, w4, H/32, W/32]
        return [x1, x2, x3, x4, x5]


def load_torchvision_weights(encoder: ResNetEncoder, state_dict: dict[str, Tensor]) -> list[str]:
    """Initialise ``encoder`` from a torchvision ResNet state_dict (classifier ignored).

    The 3-channel ``conv1.weight`` fills the RGB input channels; extra input channels (the
    trimap) start at zero. Returns the names of encoder parameters that were NOT initialised.

    Raises:
        CheckpointError: a tensor in the file has a shape the encoder cannot take.
    """
    own = encoder.state_dict()
    loaded: set[str] = set()
    for name, value in state_dict.items():
        if name.startswith("fc.") or name not in own:
            continue
        target = own[name]
        if name == "conv1.weight" and value.shape[1] == 3 and target.shape[1] > 3:
            widened = torch.zeros_like(target)
            widened[:, :3] = value
            value = widened
        if value.shape != target.shape:
            raise CheckpointError(
                f"torchvision weights: '{name}' has shape {tuple(value.shape)}, "
                f"the encoder expects {tuple(target.shape)} (is the variant a resnet18/34 at full width?)"
            )
        own[name] = value.to(target.dtype)
        loaded.add(name)
    encoder.load_state_dict(own)
    return sorted(set(own) - loaded)


def read_torchvision_file(path: str | Path) -> dict[str, Tensor]:
    """Read a torchvision ResNet weight file without executing code from it.

    ``.safetensors`` files are read directly. ``.pth`` files (torchvision's format) are read
    with ``torch.load(weights_only=True)``, the restricted loader that only rebuilds tensors and
    refuses arbitrary objects.
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: encoder weight file not found")
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(p))
        return torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - re-raised as a typed error naming the file
        raise CheckpointError(f"{p}: cannot read encoder weights ({exc})") from exc
