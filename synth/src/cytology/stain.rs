//! Stains: the palette of a Papanicolaou-like smear and the per-site
//! (hue, saturation, brightness) shifts that make centres look different.

use crate::canvas::Rgb;
use rand::Rng;
use rand_distr::StandardNormal;

/// A stain look: applied to every stain colour before drawing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stain {
    /// Hue rotation, degrees.
    hue_deg: f32,
    /// Chroma multiplier.
    saturation: f32,
    /// Luma multiplier.
    brightness: f32,
}

/// Per-site stain of the four cytology centres (cy-a is the reference).
const SITE_STAINS: [Stain; 4] = [
    Stain {
        hue_deg: 0.0,
        saturation: 1.0,
        brightness: 1.0,
    },
    Stain {
        hue_deg: 14.0,
        saturation: 0.85,
        brightness: 1.03,
    },
    Stain {
        hue_deg: -12.0,
        saturation: 1.15,
        brightness: 0.96,
    },
    Stain {
        hue_deg: 22.0,
        saturation: 1.08,
        brightness: 0.98,
    },
];

impl Stain {
    /// The stain of site `site` with a small per-case jitter.
    pub(crate) fn for_case(site: usize, rng: &mut impl Rng) -> Stain {
        let s = SITE_STAINS[site % SITE_STAINS.len()];
        let n = |rng: &mut dyn rand::RngCore| rng.sample::<f32, _>(StandardNormal);
        Stain {
            hue_deg: s.hue_deg + 4.0 * n(rng),
            saturation: s.saturation * (1.0 + 0.06 * n(rng)),
            brightness: s.brightness * (1.0 + 0.02 * n(rng)),
        }
    }

    /// Apply the stain to a colour: rotate and scale its chroma in YIQ.
    pub(crate) fn apply(&self, c: Rgb) -> Rgb {
        let y = 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2];
        let i = 0.596 * c[0] - 0.274 * c[1] - 0.322 * c[2];
        let q = 0.211 * c[0] - 0.523 * c[1] + 0.312 * c[2];
        let (s, co) = self.hue_deg.to_radians().sin_cos();
        let (i, q) = (
            (i * co - q * s) * self.saturation,
            (i * s + q * co) * self.saturation,
        );
        let y = y * self.brightness;
        [
            y + 0.956 * i + 0.621 * q,
            y - 0.272 * i - 0.647 * q,
            y - 1.106 * i + 1.703 * q,
        ]
    }

    /// The palette under this stain.
    pub(crate) fn palette(&self) -> Palette {
        // The glass stays pale and grey whatever the stain: only a trace of tint.
        let glass = Stain {
            saturation: self.saturation * 0.5,
            ..*self
        };
        Palette {
            glass: glass.apply([236.0, 233.0, 239.0]),
            nucleus_dark: self.apply([82.0, 64.0, 132.0]),
            nucleus_pale: self.apply([168.0, 152.0, 205.0]),
            nucleolus: self.apply([150.0, 50.0, 110.0]),
            cyto_cyan: self.apply([128.0, 186.0, 192.0]),
            cyto_keratin: self.apply([240.0, 150.0, 96.0]),
            erythrocyte: self.apply([226.0, 126.0, 118.0]),
            lymphocyte: self.apply([84.0, 66.0, 128.0]),
            necrosis: self.apply([172.0, 120.0, 152.0]),
            mucin: self.apply([172.0, 192.0, 216.0]),
            colloid: self.apply([196.0, 140.0, 186.0]),
            pigment: self.apply([112.0, 74.0, 36.0]),
        }
    }
}

/// Colours of one smear.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Palette {
    /// Empty glass.
    pub glass: Rgb,
    /// Hyperchromatic nucleus.
    pub nucleus_dark: Rgb,
    /// Pale (vesicular, ground-glass) nucleus.
    pub nucleus_pale: Rgb,
    /// Nucleolus.
    pub nucleolus: Rgb,
    /// Cyanophilic cytoplasm.
    pub cyto_cyan: Rgb,
    /// Orangeophilic (keratinised) cytoplasm.
    pub cyto_keratin: Rgb,
    /// Red blood cells.
    pub erythrocyte: Rgb,
    /// Lymphocyte nuclei.
    pub lymphocyte: Rgb,
    /// Necrotic debris.
    pub necrosis: Rgb,
    /// Mucin.
    pub mucin: Rgb,
    /// Thyroid colloid.
    pub colloid: Rgb,
    /// Melanin.
    pub pigment: Rgb,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_stain_keeps_colours_and_glass_stays_background() {
        let s = SITE_STAINS[0];
        let c = s.apply([120.0, 60.0, 200.0]);
        assert!(
            (c[0] - 120.0).abs() < 1.0 && (c[1] - 60.0).abs() < 1.0 && (c[2] - 200.0).abs() < 1.5
        );
        for site in SITE_STAINS {
            let g = site.palette().glass;
            let spread = g.iter().cloned().fold(f32::MIN, f32::max)
                - g.iter().cloned().fold(f32::MAX, f32::min);
            let mean = (g[0] + g[1] + g[2]) / 3.0;
            assert!(
                spread < 12.0 && mean > 215.0,
                "glass must not look like tissue: {g:?}"
            );
        }
    }
}
