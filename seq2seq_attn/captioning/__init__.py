"""Image captioning with visual attention (Xu et al., 2015, "Show, Attend and Tell"): caption datasets (users'
COCO / Flickr8k / Hugging Face ``imagefolder`` files and two built-in benchmark sets with word boxes), and the
attention-correctness metric of Liu et al. (2017)."""
