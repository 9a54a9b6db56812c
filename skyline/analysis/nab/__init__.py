"""NAB (Numenta Anomaly Benchmark) harness: run streaming detectors over a NAB-layout
corpus (``runner``) and score their results with NAB's rules (``scoring``)."""
