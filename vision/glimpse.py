"""The glimpse sensor of the Recurrent Attention Model (Mnih, Heess, Graves, Kavukcuoglu, 2014, "Recurrent
Models of Visual Attention", NeurIPS, arXiv:1406.6247, section 3.1), and the glimpse-path figure.

A glimpse at location ``l`` is ``k`` square patches centred on ``l``: the first ``g×g`` pixels, each next one
twice as wide, every patch resized to ``g×g`` (block averages) and the ``k`` results stacked. Locations are in
``[-1, 1]²`` as ``(x, y)`` (``F.grid_sample``'s convention: ``(-1, -1)`` is the top-left image corner,
``(1, 1)`` the bottom-right), so the same model reads images of any size; outside the image the sensor sees
zeros. The crop of the whole batch is one ``F.affine_grid`` + ``F.grid_sample`` per scale (no loop over images).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from seq2seq_attn.plotting import save_figure


def glimpse_sensor(images: torch.Tensor, locations: torch.Tensor, patch: int, scales: int) -> torch.Tensor:
    """Extract the retina-like glimpse ``rho(x, l)``.

    Args:
        images: (B, C, H, W) float.
        locations: (B, 2) centres ``(x, y)`` in ``[-1, 1]`` (values outside are allowed: the patch then
            covers the zero border).
        patch: g, the side in pixels of the first (finest) patch and of every resized patch.
        scales: k >= 1 patches, of sides ``g * 2**i`` pixels, ``i = 0 .. k-1``.

    Returns:
        (B, k, C, g, g): patch i is the ``g 2^i``-pixel square around ``l`` averaged down to ``g×g``.

    Raises:
        ValueError: ``patch < 1``, ``scales < 1`` or locations not (B, 2).
    """
    if patch < 1 or scales < 1:
        raise ValueError(f"patch and scales must be >= 1, got {patch}, {scales}")
    b, c, h, w = images.shape
    if locations.shape != (b, 2):
        raise ValueError(f"locations must be (B, 2) = ({b}, 2), got {tuple(locations.shape)}")
    out = []
    for i in range(scales):
        side = patch * 2 ** i  # pixels
        theta = images.new_zeros(b, 2, 3)
        theta[:, 0, 0] = side / w  # the patch spans side/W of the image's width in normalized units
        theta[:, 1, 1] = side / h
        theta[:, :, 2] = locations.to(images.dtype)
        grid = F.affine_grid(theta, [b, c, side, side], align_corners=False)  # (B, side, side, 2)
        crop = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        out.append(F.avg_pool2d(crop, 2 ** i) if i else crop)  # (B, C, g, g)
    return torch.stack(out, 1)  # (B, k, C, g, g)


def pixel_centre(locations: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Locations (..., 2) in ``[-1, 1]`` -> pixel coordinates (..., 2) ``(col, row)`` of the same point, with
    pixel ``j``'s centre at ``j`` (``align_corners=False``)."""
    size = locations.new_tensor([width, height])
    return (locations + 1) * size / 2 - 0.5


def plot_glimpse_paths(images: torch.Tensor, locations: torch.Tensor, patch: int, scales: int, path: str | Path,
                       labels: list[str] | None = None) -> Path:
    """Draw each image (B, 1 or 3, H, W) in [0, 1] with its glimpse path: ``locations`` (B, G, 2) in
    ``[-1, 1]``, the first glimpse's patches as squares, every glimpse's finest patch as a numbered square.
    ``labels``: a title per image. Written as a PNG to ``path`` (folders made); returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    b, c, h, w = images.shape
    pix = pixel_centre(locations.float().cpu(), h, w)  # (B, G, 2)
    fig, axes = plt.subplots(1, b, figsize=(2.6 * b, 2.8), squeeze=False)
    for n, ax in enumerate(axes[0]):
        img = images[n].float().cpu().permute(1, 2, 0).clamp(0, 1).numpy()
        ax.imshow(img[..., 0] if c == 1 else img, cmap="gray", vmin=0, vmax=1)
        ax.plot(pix[n, :, 0], pix[n, :, 1], "-", color="tab:orange", lw=1)
        for t, (x, y) in enumerate(pix[n].tolist()):
            colour = "tab:green" if t == 0 else "tab:red"
            ax.add_patch(Rectangle((x - patch / 2, y - patch / 2), patch, patch, fill=False, ec=colour, lw=1))
            ax.text(x, y, str(t + 1), color="yellow", fontsize=7, ha="center", va="center")
        x0, y0 = pix[n, 0].tolist()
        for i in range(1, scales):
            side = patch * 2 ** i
            ax.add_patch(Rectangle((x0 - side / 2, y0 - side / 2), side, side, fill=False, ec="tab:green", lw=0.6,
                                   ls="--"))
        frame_image_axis(ax, h, w, None if labels is None else labels[n])
    return save_figure(fig, path)


def frame_image_axis(ax, height: int, width: int, title: str | None = None) -> None:
    """Fit a matplotlib axis to an image of ``height`` × ``width`` pixels (pixel ``j``'s centre at ``j``, rows
    downwards), without ticks, with an optional small ``title``."""
    ax.set_xlim(-0.5, width - 0.5)
    ax.set_ylim(height - 0.5, -0.5)
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title, fontsize=8)
