"""The glimpse sensor of the Recurrent Attention Model (Mnih, Heess, Graves, Kavukcuoglu, 2014, "Recurrent
Models of Visual Attention", NeurIPS, arXiv:1406.6247, section 3.1), and the glimpse-path figure.

A glimpse at location ``l`` is ``k`` square patches centred on ``l``: the first ``g×g`` pixels, each next one
twice as wide, every patch resized to ``g×g`` (block averages) and the ``k`` results stacked. Locations are in
``[-1, 1]²`` as ``(x, y)`` (``F.grid_sample``'s convention: ``(-1, -1)`` is the top-left image corner,
``(1, 1)`` the bottom-right), so the same model reads images of any size; outside the image the sensor sees
zeros. The crop of the whole batch is one ``F.grid_sample`` per scale on a box-filtered image (no loop over images).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from seq2seq_attn.plotting import save_figure


def glimpse_pyramid(images: torch.Tensor, scales: int) -> list[torch.Tensor]:
    """The box-filtered images the sensor samples, computed once per image batch and shared by every glimpse.

    Level ``i`` is the image's ``r×r`` box average at stride 1 (``r = 2**i``) over the image zero-padded by
    ``r - 1`` on every side: (B, C, H + r - 1, W + r - 1), with entry ``[y, x]`` the mean of the image's pixels
    ``y - r + 1 .. y`` × ``x - r + 1 .. x``. Level 0 is the image itself. Each level is made from the one before
    (a ``2r`` box is the mean of two ``r`` boxes ``r`` apart): two additions per pixel and axis, whatever ``r``.
    """
    out = [images]
    for i in range(1, scales):
        r = 2 ** (i - 1)
        prev = F.pad(out[-1], (r, r, r, r))  # (B, C, H + 3r - 1, W + 3r - 1): zero where no image pixel is
        rows = (prev[..., :-r, :] + prev[..., r:, :]) * 0.5  # 2r rows, ending at each row
        out.append((rows[..., :-r] + rows[..., r:]) * 0.5)  # (B, C, H + 2r - 1, W + 2r - 1)
    return out


def glimpse_sensor(images: torch.Tensor, locations: torch.Tensor, patch: int, scales: int,
                   pyramid: list[torch.Tensor] | None = None) -> torch.Tensor:
    """Extract the retina-like glimpse ``rho(x, l)``.

    Patch ``i`` is the bilinear crop of ``g 2^i`` pixels around ``l`` averaged in ``2^i×2^i`` blocks down to
    ``g×g``. Because the crop's sample points are one pixel apart, that block average equals one bilinear
    sample of the ``2^i`` box-filtered image (:func:`glimpse_pyramid`) per output pixel: ``g²`` samples per
    scale instead of ``g² 4^i`` (the same numbers up to rounding; one ``F.grid_sample`` per scale for the
    whole batch, no loop over images).

    Args:
        images: (B, C, H, W) float.
        locations: (B, 2) centres ``(x, y)`` in ``[-1, 1]`` (values outside are allowed: the patch then
            covers the zero border).
        patch: g, the side in pixels of the first (finest) patch and of every resized patch.
        scales: k >= 1 patches, of sides ``g * 2**i`` pixels, ``i = 0 .. k-1``.
        pyramid: ``glimpse_pyramid(images, scales)`` when the caller reads several glimpses of the same
            images (computed here otherwise).

    Returns:
        (B, k, C, g, g): patch i is the ``g 2^i``-pixel square around ``l`` averaged down to ``g×g``.

    Raises:
        ValueError: ``patch < 1``, ``scales < 1``, locations not (B, 2) or a pyramid of the wrong depth.
    """
    if patch < 1 or scales < 1:
        raise ValueError(f"patch and scales must be >= 1, got {patch}, {scales}")
    b, c, h, w = images.shape
    if locations.shape != (b, 2):
        raise ValueError(f"locations must be (B, 2) = ({b}, 2), got {tuple(locations.shape)}")
    pyramid = glimpse_pyramid(images, scales) if pyramid is None else pyramid
    if len(pyramid) < scales:
        raise ValueError(f"pyramid has {len(pyramid)} levels, the sensor needs {scales}")
    loc = locations.to(images.dtype)
    size = loc.new_tensor([w, h])
    steps = torch.arange(patch, device=images.device, dtype=images.dtype)
    out = []
    for i in range(scales):
        r = 2 ** i
        level = pyramid[i]  # (B, C, H + r - 1, W + r - 1)
        first = (loc + 1) * size / 2 - patch * r / 2  # (B, 2): pixel coordinate of the crop's first sample
        pos = first.unsqueeze(1) + (steps * r + r - 1).view(1, -1, 1)  # (B, g, 2): in the level's pixels
        norm = (2 * pos + 1) / loc.new_tensor([level.shape[-1], level.shape[-2]]) - 1  # align_corners=False
        grid = torch.stack([norm[:, None, :, 0].expand(b, patch, patch),
                            norm[:, :, None, 1].expand(b, patch, patch)], -1)  # (B, g, g, 2) as (x, y)
        out.append(F.grid_sample(level, grid, mode="bilinear", padding_mode="zeros", align_corners=False))
    return torch.stack(out, 1)  # (B, k, C, g, g)


def pixel_centre(locations: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Locations (..., 2) in ``[-1, 1]`` -> pixel coordinates (..., 2) ``(col, row)`` of the same point, with
    pixel ``j``'s centre at ``j`` (``align_corners=False``)."""
    size = locations.new_tensor([width, height])
    return (locations + 1) * size / 2 - 0.5


def pixel_location(pixels: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Pixel coordinates (..., 2) ``(col, row)`` -> locations (..., 2) in ``[-1, 1]`` units: the inverse of
    :func:`pixel_centre`."""
    size = pixels.new_tensor([width, height])
    return (pixels + 0.5) * 2 / size - 1


def ink_centre(images: torch.Tensor) -> torch.Tensor:
    """The intensity-weighted centre of mass of each image over all channels, as pixel coordinates
    ``(col, row)`` (pixel ``j``'s centre at ``j``): for one object on a black canvas, e.g. translated MNIST, the
    object's centre; with clutter it is pulled towards the pieces.

    Args:
        images: (B, C, H, W), non-negative intensities with some ink in every image.

    Returns:
        (B, 2) float32.

    Raises:
        ValueError: an image without ink.
    """
    _, _, h, w = images.shape
    mass = images.float().sum(1)  # (B, H, W)
    total = mass.sum((1, 2))  # (B,)
    if not bool((total > 0).all()):
        raise ValueError("every image needs some ink (a positive pixel) to have an ink centre")
    rows = torch.arange(h, dtype=mass.dtype, device=mass.device)
    cols = torch.arange(w, dtype=mass.dtype, device=mass.device)
    return torch.stack([(mass.sum(1) * cols).sum(1), (mass.sum(2) * rows).sum(1)], -1) / total[:, None]


def ink_centre_distance(images: torch.Tensor, locations: torch.Tensor, centres: torch.Tensor | None = None
                        ) -> torch.Tensor:
    """How far each glimpse lands from the object: the distance in pixels from every glimpse centre to the
    image's :func:`ink_centre`, or to ``centres`` where the object is known (e.g. a placed digit's own centre,
    :func:`vision.mnist_variants.digit_centres`, which clutter does not pull).

    Args:
        images: (B, C, H, W), non-negative intensities with some ink in every image (without ``centres``).
        locations: (B, G, 2) glimpse centres ``(x, y)`` in ``[-1, 1]``.
        centres: (B, 2) pixel coordinates ``(col, row)`` of the object, or ``None``.

    Returns:
        (B, G) distances in pixels.

    Raises:
        ValueError: locations not (B, G, 2) or, without ``centres``, an image without ink.
    """
    b, _, h, w = images.shape
    if locations.dim() != 3 or locations.shape[0] != b or locations.shape[2] != 2:
        raise ValueError(f"locations must be (B, G, 2) with B = {b}, got {tuple(locations.shape)}")
    centre = ink_centre(images) if centres is None else centres.float()  # (B, 2)
    return (pixel_centre(locations.float(), h, w) - centre.unsqueeze(1)).norm(dim=-1)


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
