//! The embedding index: algorithm and on-page layout, generic over a page-storage trait.
