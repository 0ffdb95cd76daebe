"""Audio: reading recordings (io), levels (level), speech features in torch (features, mel),
augmentation.

Example:
    >>> import torch
    >>> from rnnlab.data.audio import FeatureConfig, FeatureExtractor
    >>> extractor = FeatureExtractor(FeatureConfig(sample_rate=8000, kind="logmel", n_mels=20))
    >>> feats, frames = extractor(torch.randn(4000))
    >>> tuple(feats.shape), int(frames)
    ((51, 20), 51)
"""

from rnnlab.data.audio.augment import add_noise, spec_augment, speed_perturb
from rnnlab.data.audio.features import (
    FeatureConfig,
    FeatureExtractor,
    deltas,
    normalize_utterance,
    pre_emphasis,
)
from rnnlab.data.audio.io import (
    Audio,
    AudioConversionWarning,
    AudioError,
    load_audio,
    resample,
    to_mono,
)
from rnnlab.data.audio.level import (
    normalize_loudness,
    peak_dbfs,
    rms_dbfs,
    speech_bounds,
    trim_silence,
)
from rnnlab.data.audio.mel import (
    dct_matrix,
    hz_to_mel,
    mel_filterbank,
    mel_to_hz,
    vtlp_frequency,
)

__all__ = [
    "Audio",
    "AudioConversionWarning",
    "AudioError",
    "FeatureConfig",
    "FeatureExtractor",
    "add_noise",
    "dct_matrix",
    "deltas",
    "hz_to_mel",
    "load_audio",
    "mel_filterbank",
    "mel_to_hz",
    "normalize_loudness",
    "normalize_utterance",
    "peak_dbfs",
    "pre_emphasis",
    "resample",
    "rms_dbfs",
    "spec_augment",
    "speech_bounds",
    "speed_perturb",
    "to_mono",
    "trim_silence",
    "vtlp_frequency",
]
