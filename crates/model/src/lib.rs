//! The SynthTriplet model: encoders, conditional generator and critic, training and evaluation.
