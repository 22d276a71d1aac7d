"""Small conv building blocks shared by the Semantic Path decoder and the TCP."""

from __future__ import annotations

from torch import Tensor, nn


def make_norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(min(8, channels), channels)
    raise ValueError(f"unknown norm '{kind}'")


class ConvNormReLU(nn.Sequential):
    """3x3 (or kxk) conv -> norm -> ReLU; the conv has no bias since the norm follows."""

    def __init__(self, cin: int, cout: int, norm: str, kernel: int = 3) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, kernel, 1, kernel // 2, bias=False),
            make_norm(norm, cout),
            nn.ReLU(inplace=True),
        )


class ResidualBlock(nn.Module):
    """Two 3x3 conv-norm layers with an identity shortcut, at constant resolution (§3.2)."""

    def __init__(self, channels: int, norm: str) -> None:
        super().__init__()
        self.conv1 = ConvNormReLU(channels, channels, norm)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.norm2 = make_norm(norm, channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(x + self.norm2(self.conv2(self.conv1(x))))
