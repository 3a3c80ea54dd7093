"""The papers' own comparisons, placed beside the study's results in its report: a static table of figures
as the papers state them, each with its source. Only figures read in a stored copy of the paper, of its
abstract or of a transcription of its text are here; rows that could not be found are named as missing,
never filled in.
"""

from __future__ import annotations

PAPERS_SECTION = """\
## The papers' own comparisons

Figures as the papers report them (their data, models and hardware, not ours: they are placed here to be
read beside the study's figures, not compared number for number).

**Luong et al. (2015), "Effective Approaches to Attention-based Neural Machine Translation", Table 4** —
WMT'14 English→German, newstest2014, attentional models with dropout and input feeding (read from the
paper's text, arXiv 1508.04025; "x": not reported):

| attention (score) | perplexity | BLEU | BLEU after unk replacement |
| --- | ---: | ---: | ---: |
| global (location) | 6.4 | 18.1 | 19.3 |
| global (dot) | 6.1 | 18.6 | 20.5 |
| global (general) | 6.1 | 17.3 | 19.1 |
| local-m (dot) | 7.0 | x | x |
| local-m (general) | 6.2 | 18.6 | 20.4 |
| local-p (dot) | 6.6 | 18.0 | 19.6 |
| local-p (general) | 5.9 | 19.0 | 20.9 |

The concat score is not in the table: the paper's footnote 15 gives its perplexities as 6.7 (global),
7.1 (local-m) and 7.1 (local-p) and says its implementation "does not yield good performances". The
paper's reading: dot works well for global attention, general for local attention.

**Wang et al. (2020), "ECA-Net: Efficient Channel Attention for Deep Convolutional Neural Networks"
(CVPR), Table 3** — ImageNet-1K, ResNet-50 backbone, single 224×224 centre crop (read from a Markdown
transcription of the paper's full text in the stored code index, file id 57933672842, whose abstract and
ECA-Net row agree with the arXiv 1910.03151 abstract: 80 parameters and 4.7e-4 GFLOPs added to 24.37 M and
3.86 GFLOPs, +2.28 % top-1). The paper copies the ResNet and SENet rows from the SE paper and the others from
their own papers; †: trained by their authors, no public code to time; AA-Net also used Inception-style
augmentation and other learning rates:

| method (ResNet-50) | parameters | FLOPs | top-1 % | top-5 % |
| --- | ---: | ---: | ---: | ---: |
| ResNet | 24.37 M | 3.86 G | 75.20 | 92.52 |
| SENet | 26.77 M | 3.87 G | 76.71 | 93.38 |
| CBAM | 26.77 M | 3.87 G | 77.34 | 93.69 |
| A²-Nets † | 33.00 M | 6.50 G | 77.00 | 93.50 |
| GCNet | 28.08 M | 3.87 G | 77.70 | 93.66 |
| GSoP-Net1 | 28.05 M | 6.18 G | 77.68 | 93.98 |
| AA-Net † | 25.80 M | 4.15 G | 77.70 | 93.80 |
| ECA-Net | 24.37 M | 3.86 G | 77.48 | 93.68 |

The paper's reading: ECA keeps ResNet-50's cost and gains 2.28 points of top-1, "better or competitive"
against the heavier modules; GCNet and AA-Net reach 77.70 with 3.7 M and 1.4 M more parameters.

**Huang et al. (2019), "CCNet: Criss-Cross Attention for Semantic Segmentation"** (abstract): compared
with the non-local block, the recurrent criss-cross attention module "requires 11× less GPU memory usage"
and reduces FLOPs "by about 85 %".

**Zhu et al. (2019), "Asymmetric Non-local Neural Networks for Semantic Segmentation"** (abstract): for a
256×128 input, APNB is "around 6 times faster than a non-local block on GPU while 28 times smaller in GPU
running memory occupation".
"""
