"""The Recurrent Attention Model (RAM; Mnih, Heess, Graves, Kavukcuoglu, 2014, "Recurrent Models of Visual
Attention", NeurIPS, arXiv:1406.6247) and, for soft-vs-hard comparisons, the same recurrent model with soft
spatial attention over a CNN feature map.

RAM (section 3 of the paper), for ``t = 1 .. G`` glimpses:

- location network: ``l_t ~ N(mu_t, std² I)`` with ``mu_t = tanh(W_l h_{t-1})`` (``h_0 = 0``, so ``mu_1`` is
  learned by its bias); at evaluation ``l_t = mu_t``. By default it reads ``h`` detached, so REINFORCE trains
  the location network alone; with ``policy_trains_core`` the REINFORCE gradient also reaches the core and the
  glimpse network, as in the paper's gradient over all parameters ``theta`` (section 3.2);
- glimpse sensor ``rho(x, l_t)`` (:func:`vision.glimpse.glimpse_sensor`: k patches, g×g, doubling scales);
- glimpse network (what and where): ``g_t = ReLU(W_1 ReLU(W_g rho) + W_2 ReLU(W_w l_t))``;
- recurrent core: ``h_t = ReLU(W_h h_{t-1} + W_x g_t)`` (``core: rnn``) or an LSTM cell (``core: lstm``);
- classifier ``softmax(W_a h_G)`` on the last state and a learned baseline ``b_t = w_b·h_{t-1} + c`` (detached
  state) per glimpse.

The loss (the paper's hybrid loss, :func:`policy_loss`): cross-entropy of the classifier (the task's) +
REINFORCE on the locations, ``-sum_t (R - b_t) log pi(l_t)`` with ``R = 1`` for a correct classification,
+ baseline regression ``sum_t (b_t - R)²`` (Williams, 1992; Sutton et al., 2000). Not the paper's, by config
(``location_gradient``): the classification loss can also reach the location network through the sensor's
bilinear sampling of a reparameterized location (a spatial transformer's gradient, Jaderberg et al., 2015).

Not learned, to compare against (``policy``): random glimpses (the paper's baseline) and a scan around the
window with the most ink (:func:`densest_window_centre`), which shows what the rest of RAM does with glimpses
that are on the object.

The glimpse locations of each forward pass are recorded (``capture_attention``) as one (B, G, 2) tensor per
glimpse path (``eval_samples`` paths in a Monte Carlo evaluation, one otherwise).
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import nn

from seq2seq_attn.attention import AdditiveScore, Attention, RecordsAttention

from ..glimpse import glimpse_pyramid, glimpse_sensor, ink_centre, pixel_location

Core = Literal["rnn", "lstm"]
Reward = Literal["correct", "probability", "log_likelihood"]
LocationGradient = Literal["reinforce", "pathwise", "both"]
Policy = Literal["learned", "random", "densest"]


def scan_offsets(count: int) -> torch.Tensor:
    """The first ``count`` points (dx, dy) of the integer grid, nearest the origin first (ties by angle): (0, 0),
    then the 4 edge neighbours, the 4 diagonal ones, the ring at distance 2, ... -> (count, 2) float32."""
    side = math.isqrt(count) + 2
    grid = [(dx, dy) for dx in range(-side, side + 1) for dy in range(-side, side + 1)]
    grid.sort(key=lambda p: (p[0] ** 2 + p[1] ** 2, math.atan2(p[1], p[0])))
    return torch.tensor(grid[:count], dtype=torch.float32)


def densest_window_centre(images: torch.Tensor, window: int) -> torch.Tensor:
    """Where the object is, found without learning: the ``window``×``window`` square (clipped to the image)
    holding the most ink (the channels' sum less its minimum per image, summed over every square with a summed-area
    table; the first square on ties), and the ink's centre of mass inside it. images (B, C, H, W) -> pixel
    coordinates ``(col, row)`` (B, 2) float32 (pixel ``j``'s centre at ``j``); an image without ink gives the
    first square's centre."""
    ink = images.detach().float().sum(1)  # (B, H, W)
    ink = ink - ink.amin((1, 2), keepdim=True)
    h, w = ink.shape[-2:]
    kh, kw = min(window, h), min(window, w)
    table = F.pad(ink.cumsum(1).cumsum(2), (1, 0, 1, 0))  # (B, H + 1, W + 1): the summed-area table
    box = (table[:, kh:, kw:] - table[:, :-kh, kw:] - table[:, kh:, :-kw] + table[:, :-kh, :-kw]).flatten(1)
    top, left = box.argmax(1) // (w - kw + 1), box.argmax(1) % (w - kw + 1)  # (B,)
    rows, cols = torch.arange(h, device=ink.device), torch.arange(w, device=ink.device)
    inside = (((rows >= top[:, None]) & (rows < top[:, None] + kh))[:, :, None]
              & ((cols >= left[:, None]) & (cols < left[:, None] + kw))[:, None, :]).float()  # (B, H, W)
    mass = ink * inside
    empty = mass.sum((1, 2)) <= 0  # no ink: the window's centre, as if its ink were even
    return ink_centre(torch.where(empty[:, None, None], inside, mass)[:, None])  # (B, 2)


class RecurrentCore(nn.Module):
    """``h_t = ReLU(W_h h_{t-1} + W_x x_t)`` (the paper's rectifier core) or ``nn.LSTMCell``; state (h, c)."""

    def __init__(self, input_size: int, hidden: int, cell: Core = "rnn") -> None:
        super().__init__()
        if cell not in ("rnn", "lstm"):
            raise ValueError(f"core must be rnn or lstm, got {cell!r}")
        self.cell, self.hidden = cell, hidden
        if cell == "lstm":
            self.lstm = nn.LSTMCell(input_size, hidden)
        else:
            self.w_x, self.w_h = nn.Linear(input_size, hidden), nn.Linear(hidden, hidden)

    def initial(self, batch: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        zeros = like.new_zeros(batch, self.hidden)
        return zeros, zeros

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, In), state ((B, H), (B, H)) -> the new state."""
        if self.cell == "lstm":
            return self.lstm(x, state)
        return F.relu(self.w_x(x) + self.w_h(state[0])), state[1]


class GlimpseNetwork(nn.Module):
    """``g = ReLU(W_1 ReLU(W_g rho) + W_2 ReLU(W_w l))``: the "what" (glimpse) and "where" (location) pathways.

    ``conv_widths`` empty: ``W_g`` is one linear layer on the flattened glimpse (the paper's). Otherwise the
    "what" pathway is a small CNN on the ``k·C`` stacked patches first (conv3×3-ReLU per width, stride 2
    after the first; the convolutional glimpse network of Ba, Mnih, Kavukcuoglu, 2015, "Multiple Object
    Recognition with Visual Attention", arXiv:1412.7755), then ``W_g`` on its flattened output.
    """

    def __init__(self, channels: int, patch: int, what_hidden: int, where_hidden: int, out: int,
                 conv_widths: tuple[int, ...] = ()) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        side = patch
        for n, width in enumerate(conv_widths):
            stride = 1 if n == 0 else 2
            layers += [nn.Conv2d(channels, width, 3, stride=stride, padding=1), nn.ReLU(inplace=True)]
            channels, side = width, (side - 1) // stride + 1
        self.conv = nn.Sequential(*layers)
        self.what, self.where = nn.Linear(channels * side * side, what_hidden), nn.Linear(2, where_hidden)
        self.what_out, self.where_out = nn.Linear(what_hidden, out), nn.Linear(where_hidden, out)

    def forward(self, glimpse: torch.Tensor, location: torch.Tensor) -> torch.Tensor:
        """glimpse (B, k, C, g, g), location (B, 2) -> (B, out)."""
        what = F.relu(self.what(self.conv(glimpse.flatten(1, 2)).flatten(1)))  # (B, what_hidden)
        where = F.relu(self.where(location))
        return F.relu(self.what_out(what) + self.where_out(where))


class RecurrentAttentionModel(RecordsAttention):
    """RAM (see the module doc). ``forward(images (B, C, H, W)) -> logits (B, num_classes)``; in training mode
    it keeps the locations' log-probabilities and the baselines of the pass for :func:`policy_loss`.

    Args:
        num_classes, in_channels: classes and image channels (any image size).
        glimpses: G; patch: g pixels; scales: k; std: the policy's fixed standard deviation (in the
            ``[-1, 1]`` location units); what_hidden, where_hidden, hidden: layer sizes (paper: 128, 128, 256);
        core: ``rnn`` or ``lstm``; policy_trains_core: let REINFORCE's gradient reach the core and the glimpse
            network (default: the location network alone); conv_widths: a convolutional "what" pathway
            (:class:`GlimpseNetwork`; empty: the paper's linear one); locator_hidden: a ReLU hidden layer of
            this size in the location network before the linear map to ``mu`` (0: the paper's linear map);
        location_gradient: how the location network learns. ``reinforce`` (the paper's): REINFORCE alone, the
            sampled location carries no gradient. ``pathwise``: the location is reparameterized,
            ``l = mu + std·eps``, and the classification loss reaches ``mu`` through the sensor's bilinear
            sampling (as in a spatial transformer, Jaderberg et al., 2015; the coarse, box-filtered scales give
            the gradient its reach), no REINFORCE term. ``both``: the two gradients added. The "where" pathway
            reads the location detached in every mode, so the gradient only says where to look;
        eval_samples: in evaluation, 0 (default): one pass along the policy's mean path (deterministic); M >= 1:
            M glimpse paths sampled from the policy, their class probabilities averaged (Monte Carlo
            evaluation, the ``M`` of public RAM re-implementations); the noise comes from a generator seeded
            with 0 at each call, so evaluation stays deterministic; costs M passes. Each path's locations are
            recorded (M records per call);
        policy: where the glimpses go. ``learned`` (the paper's model): the location network above.
            ``random``: every glimpse at a location uniform in ``[-1, 1]²`` (the paper's "random glimpses"
            baseline, Table 2; in evaluation drawn from a generator seeded with 0 at each call).
            ``densest``: a hand-made policy, not learned: glimpse ``t`` at the centre of the ``window``×``window``
            square holding the most ink (:func:`densest_window_centre`) plus the ``t``-th point of
            :func:`scan_offsets` times ``patch / 2`` pixels, a scan around it, as the policy's mean (sampled
            with ``std`` in training and Monte Carlo evaluation, like the learned policy's); it asks how well the
            rest of the model does when the glimpses are on the object. Neither keeps a REINFORCE term;
        window: pixels, the side of ``densest``'s square (e.g. 28 for an MNIST digit).

    Raises:
        ValueError: a size < 1, ``std <= 0``, ``locator_hidden < 0``, ``eval_samples < 0``, an unknown
            ``location_gradient`` or ``policy``.
    """

    def __init__(self, num_classes: int, in_channels: int = 1, glimpses: int = 6, patch: int = 8, scales: int = 1,
                 std: float = 0.17, what_hidden: int = 128, where_hidden: int = 128, hidden: int = 256,
                 core: Core = "rnn", conv_widths: tuple[int, ...] = (), policy_trains_core: bool = False,
                 locator_hidden: int = 0, location_gradient: LocationGradient = "reinforce",
                 eval_samples: int = 0, policy: Policy = "learned", window: int = 28) -> None:
        super().__init__()
        if min(glimpses, patch, scales, what_hidden, where_hidden, hidden, window, *conv_widths) < 1 or not std > 0 \
                or min(locator_hidden, eval_samples) < 0:
            raise ValueError("glimpses, patch, scales, window and sizes must be >= 1, std > 0, locator_hidden >= 0 and "
                             "eval_samples >= 0")
        if location_gradient not in get_args(LocationGradient):
            raise ValueError(f"location_gradient must be reinforce, pathwise or both, got {location_gradient!r}")
        self.glimpses, self.patch, self.scales, self.std = glimpses, patch, scales, float(std)
        if policy not in get_args(Policy):
            raise ValueError(f"policy must be learned, random or densest, got {policy!r}")
        self.policy_trains_core, self.location_gradient = policy_trains_core, location_gradient
        self.policy, self.window = policy, window
        self.eval_samples = eval_samples
        self.glimpse_net = GlimpseNetwork(scales * in_channels, patch, what_hidden, where_hidden, hidden,
                                          tuple(conv_widths))
        self.core = RecurrentCore(hidden, hidden, core)
        self.locator = nn.Linear(hidden, 2) if not locator_hidden else nn.Sequential(
            nn.Linear(hidden, locator_hidden), nn.ReLU(inplace=True), nn.Linear(locator_hidden, 2))
        self.baseline = nn.Linear(hidden, 1)
        self.classifier = nn.Linear(hidden, num_classes)
        self._policy: tuple[torch.Tensor, torch.Tensor] | None = None

    def next_location(self, h: torch.Tensor, generator: torch.Generator | None = None,
                      mean: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The location (B, 2) to look at after state ``h`` (B, H), and its log-probability (B,) in training
        (``None`` when no REINFORCE term is kept: in evaluation, with ``location_gradient: pathwise`` or with a
        given ``mean``). The location carries a gradient to ``mu`` only with a ``pathwise`` gradient. In
        evaluation: the mean, or a sample drawn with ``generator`` when one is given (Monte Carlo evaluation).
        ``mean`` (B, 2): a fixed policy's mean location (``densest``) in the place of the location network's,
        explored with the same Gaussian noise."""
        fixed = mean is not None
        if mean is None:
            mu = self.locator(h if self.policy_trains_core else h.detach())
            mean = torch.tanh(mu.to(torch.promote_types(mu.dtype, torch.float32)))  # >= float32 (autocast)
        if not self.training and generator is None:
            return mean, None
        noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)  # global RNG
        sample = mean + self.std * noise  # reparameterized: d l / d mu = 1
        if not self.training or fixed:
            return sample.detach().clamp(-1.0, 1.0), None
        log_prob = None
        if self.location_gradient != "pathwise":
            log_prob = torch.distributions.Normal(mean, self.std).log_prob(sample.detach()).sum(-1)  # (B,)
        if self.location_gradient == "reinforce":
            sample = sample.detach()
        return sample.clamp(-1.0, 1.0), log_prob

    def fixed_locations(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The G locations (B, G, 2) in ``[-1, 1]`` of a ``random`` or ``densest`` policy for ``images``
        (B, C, H, W); ``random`` draws with ``generator`` (the global RNG when ``None``)."""
        b, _, h, w = images.shape
        if self.policy == "random":
            return torch.rand((b, self.glimpses, 2), generator=generator, device=images.device) * 2 - 1
        centre = densest_window_centre(images, self.window)  # (B, 2) px
        pixels = centre[:, None] + scan_offsets(self.glimpses).to(images.device) * (self.patch / 2)  # (B, G, 2)
        return pixel_location(pixels, h, w).clamp(-1.0, 1.0)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        pyramid = glimpse_pyramid(images, self.scales)  # shared by the G glimpses (and the M paths)
        if self.training or not self.eval_samples:
            return self.glimpse_path(images, pyramid)  # (B, num_classes)
        generator = torch.Generator(device=images.device).manual_seed(0)
        log_p = torch.stack([self.glimpse_path(images, pyramid, generator).float().log_softmax(-1)
                             for _ in range(self.eval_samples)])  # (M, B, num_classes)
        return log_p.logsumexp(0) - math.log(self.eval_samples)  # log of the mean probability (B, num_classes)

    def glimpse_path(self, images: torch.Tensor, pyramid: list[torch.Tensor],
                     generator: torch.Generator | None = None) -> torch.Tensor:
        """One pass of G glimpses over ``images`` (B, C, H, W) -> logits (B, num_classes); its locations are
        recorded and, in training, its log-probabilities and baselines kept for :func:`policy_loss`."""
        b = images.shape[0]
        state = self.core.initial(b, images)
        locations, log_probs, baselines = [], [], []
        fixed = None
        if self.policy != "learned":
            if self.policy == "random" and generator is None and not self.training:  # a deterministic evaluation
                generator = torch.Generator(device=images.device).manual_seed(0)
            fixed = self.fixed_locations(images, generator)  # (B, G, 2)
        for t in range(self.glimpses):
            if self.policy == "random":
                loc, log_prob = fixed[:, t], None
            else:  # the location network's mean, or the densest scan's, explored with the policy's noise
                loc, log_prob = self.next_location(state[0], generator, None if fixed is None else fixed[:, t])
            if log_prob is not None:
                log_probs.append(log_prob)
                baselines.append(self.baseline(state[0].detach()).squeeze(-1).float())  # (B,)
            locations.append(loc)
            glimpse = glimpse_sensor(images, loc, self.patch, self.scales, pyramid)  # (B, k, C, g, g)
            state = self.core(self.glimpse_net(glimpse, loc.detach()), state)
        self.record(torch.stack(locations, 1))  # (B, G, 2)
        self._policy = (torch.stack(log_probs, 1), torch.stack(baselines, 1)) if log_probs else None  # (B, G)
        return self.classifier(state[0])  # (B, num_classes)


def policy_loss(model: nn.Module, logits: torch.Tensor, labels: torch.Tensor, samples: int = 1,
                reward: Reward = "correct") -> tuple[torch.Tensor, dict] | None:
    """The REINFORCE and baseline terms of every RAM in ``model`` after a training forward pass (through DDP
    or compile wrappers), summed over the images: ``-sum_t (R - b_t) log pi(l_t) + sum_t (b_t - R)²`` with
    ``R = [argmax logits == label]`` (``reward: correct``, the paper's) or ``R = p(label | x)``, the
    classifier's probability of the right class (``reward: probability``: a graded reward that also ranks
    sequences that are all classified right) or ``R = log p(label | x)`` (``reward: log_likelihood``: the
    learning rule of Ba, Mnih, Kavukcuoglu, 2015, "Multiple Object Recognition with Visual Attention",
    arXiv:1412.7755, eq. 6, from a variational bound on the label's log-likelihood; it weighs a confident
    mistake most); ``None`` when no RAM kept a policy. Clears what the RAMs kept.

    ``samples`` M > 1: the batch holds M consecutive glimpse sequences of each image (``repeat_interleave``),
    and the advantage of each uses the mean reward of the image's other M - 1 sequences as its baseline
    instead of ``b_t`` (the leave-one-out baseline of Kool, van Hoof, Welling, 2019, "Buy 4 REINFORCE Samples,
    Get a Baseline for Free!"); ``b_t`` is still regressed.

    Raises:
        ValueError: ``samples < 1``, a batch that is not a multiple of ``samples`` or an unknown ``reward``.
    """
    if samples < 1 or labels.shape[0] % samples:
        raise ValueError(f"samples must be >= 1 and divide the batch ({labels.shape[0]}), got {samples}")
    if reward not in get_args(Reward):
        raise ValueError(f"reward must be correct, probability or log_likelihood, got {reward!r}")
    total, logs = None, {}
    if reward == "correct":
        r = (logits.detach().argmax(-1) == labels).float().unsqueeze(1)  # (B, 1): R
    else:
        log_p = logits.detach().float().log_softmax(-1).gather(1, labels.unsqueeze(1))  # (B, 1)
        r = log_p.exp() if reward == "probability" else log_p  # (B, 1): R
    others = None
    if samples > 1:
        grouped = r.view(-1, samples)  # (B / M, M)
        others = ((grouped.sum(1, keepdim=True) - grouped) / (samples - 1)).view(-1, 1)  # (B, 1)
    for m in model.modules():
        if not isinstance(m, RecurrentAttentionModel) or m._policy is None:
            continue
        log_prob, baseline = m._policy  # (B, G) each
        m._policy = None
        advantage = r - (baseline.detach() if others is None else others)  # (B, G)
        term = -(advantage * log_prob).sum() + (baseline - r).square().sum()
        total = term if total is None else total + term
        logs = {"reward": float(r.mean()), "baseline": float(baseline.detach().mean())}
    return None if total is None else (total, logs)


class SoftAttentionRNN(nn.Module):
    """The soft counterpart of RAM on the same task: a small CNN (conv3×3-ReLU-2×2 max-pool per width) turns the
    image into a feature map with two coordinate channels; each of ``steps`` recurrent steps attends softly
    over all its positions with the core's additive attention (query ``h_{t-1}``) and feeds the context to the
    same recurrent core; the classifier reads the last state. Weights (B, 1, hw) are recorded per step by the
    core ``Attention``."""

    def __init__(self, num_classes: int, in_channels: int = 1, steps: int = 6, widths: tuple[int, ...] = (16, 32),
                 hidden: int = 256, attention_dim: int = 128, core: Core = "rnn") -> None:
        super().__init__()
        if steps < 1 or not widths or min(widths) < 1:
            raise ValueError("steps must be >= 1 and widths non-empty and positive")
        layers: list[nn.Module] = []
        for w in widths:
            layers += [nn.Conv2d(in_channels, w, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            in_channels = w
        self.cnn = nn.Sequential(*layers)
        self.steps, self.feature_dim = steps, widths[-1] + 2
        self.attention = Attention(AdditiveScore(hidden, self.feature_dim, attention_dim))
        self.input = nn.Linear(self.feature_dim, hidden)
        self.core = RecurrentCore(hidden, hidden, core)
        self.classifier = nn.Linear(hidden, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        fmap = self.cnn(images)  # (B, C', h, w)
        b, _, h, w = fmap.shape
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, h, device=fmap.device),
                                torch.linspace(-1, 1, w, device=fmap.device), indexing="ij")
        coords = torch.stack([xs, ys]).to(fmap.dtype).expand(b, -1, -1, -1)  # (B, 2, h, w): the "where"
        keys = torch.cat([fmap, coords], 1).flatten(2).transpose(1, 2)  # (B, hw, C'+2)
        projected = self.attention.project_keys(keys)
        state = self.core.initial(b, keys)
        for _ in range(self.steps):
            context, _ = self.attention(state[0].unsqueeze(1), keys, projected_keys=projected)  # (B, 1, C'+2)
            state = self.core(F.relu(self.input(context.squeeze(1))), state)
        return self.classifier(state[0])
