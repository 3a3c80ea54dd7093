"""Export trained runs to inference engines: CTranslate2 for Transformer translation runs (:mod:`.ct2`), ONNX
for the classifiers and the vision models (:mod:`.onnx`)."""
