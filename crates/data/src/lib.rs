//! Training data: the synthetic catalog generator, the Fashion-IQ reader and the image pipeline.
