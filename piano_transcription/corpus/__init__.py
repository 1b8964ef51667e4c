"""The training-corpus factory: generated performances, renderers (FluidSynth, sampler, sfizz),
room and microphone augmentation, and the resumable corpus builder."""
