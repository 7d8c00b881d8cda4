//! DICOM ultrasound (`docs/archive-format.md`, "DICOM ultrasound"): the
//! header read for an allowlist of imaging attributes only, one frame
//! decoded to 8-bit RGB (native RGB/YBR/monochrome, JPEG baseline, RLE),
//! and the burned-in annotation outside the ultrasound regions masked.
//! Nothing else of the header — names, IDs, dates, institutions — is read
//! into nodal, and no message quotes a header value that could identify a
//! patient.

use super::decode::DecodeError;
use dicom_dictionary_std::tags;
use dicom_object::mem::InMemDicomObject;
use dicom_object::{DefaultDicomObject, OpenFileOptions};
use dicom_pixeldata::{PhotometricInterpretation, PixelDecoder, PlanarConfiguration};
use image::RgbImage;
use nodal_types::manifest::{DicomInfo, Region};

/// True when `bytes` carry the DICOM Part 10 signature ("DICM" after the
/// 128-byte preamble).
pub fn is_dicom(bytes: &[u8]) -> bool {
    bytes.get(128..132) == Some(b"DICM".as_slice())
}

/// What the header of a DICOM ultrasound file says: the frame's size and
/// the allowlisted attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct DicomHeader {
    /// Columns.
    pub width: u32,
    /// Rows.
    pub height: u32,
    /// The allowlisted attributes recorded in the manifest.
    pub info: DicomInfo,
}

/// Read and check the header of a DICOM file (the pixel data is not read).
pub fn header(bytes: &[u8]) -> Result<DicomHeader, DecodeError> {
    let obj = OpenFileOptions::new()
        .read_until(tags::PIXEL_DATA)
        .from_reader(bytes)
        .map_err(|e| DecodeError(format!("bad DICOM header: {e}")))?;
    header_of(&obj)
}

/// Decode the chosen frame of a DICOM ultrasound file to RGB, with
/// everything outside its ultrasound regions blacked out when the header
/// does not state that the pixels carry no burned-in annotation.
pub fn decode_rgb(bytes: &[u8]) -> Result<(RgbImage, DicomHeader), DecodeError> {
    let obj = OpenFileOptions::new()
        .from_reader(bytes)
        .map_err(|e| DecodeError(format!("bad DICOM file: {e}")))?;
    let header = header_of(&obj)?;
    if header.info.unmaskable() {
        return Err(DecodeError(
            "the DICOM pixels may carry burned-in patient text (Burned In Annotation is not NO) and there is no ultrasound region to keep: not read".into(),
        ));
    }
    check_complete(bytes, &obj, &header)?;
    let mut rgb = frame_rgb(&obj, header.info.frame)?;
    if rgb.dimensions() != (header.width, header.height) {
        return Err(DecodeError(format!(
            "the DICOM header says {}×{} but {}×{} pixels were decoded",
            header.width,
            header.height,
            rgb.width(),
            rgb.height()
        )));
    }
    if header.info.masked {
        mask_outside(&mut rgb, &header.info.regions);
    }
    Ok((rgb, header))
}

/// Refuse pixel data that ends early: native data shorter than its
/// frames, encapsulated data without its sequence delimiter, or a JPEG
/// stream whose last fragment lacks the end-of-image marker (the parser
/// accepts a file cut short inside or after its last fragment).
fn check_complete(
    bytes: &[u8],
    obj: &DefaultDicomObject,
    header: &DicomHeader,
) -> Result<(), DecodeError> {
    const SEQUENCE_DELIMITER: [u8; 8] = [0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0];
    let pixels = obj
        .element_opt(tags::PIXEL_DATA)
        .map_err(|e| located("Pixel Data", tags::PIXEL_DATA, e))?
        .ok_or_else(|| DecodeError("the DICOM file has no Pixel Data (7FE0,0010)".into()))?;
    if let Some(fragments) = pixels.value().fragments() {
        let jpeg = header
            .info
            .transfer_syntax
            .starts_with("1.2.840.10008.1.2.4.5");
        let last = fragments.last().map(Vec::as_slice).unwrap_or_default();
        let end = last.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        if fragments.len() < header.info.frames as usize
            || (jpeg && !last[..end].ends_with(&[0xFF, 0xD9]))
            || !bytes.windows(8).rev().any(|w| w == SEQUENCE_DELIMITER)
        {
            return Err(DecodeError(format!(
                "truncated DICOM pixel data: {} fragments for {} frames, or the fragment sequence does not end{}",
                fragments.len(),
                header.info.frames,
                if jpeg {
                    ", the last without a JPEG end-of-image marker"
                } else {
                    ""
                }
            )));
        }
        return Ok(());
    }
    let samples = number(obj, tags::SAMPLES_PER_PIXEL, "Samples per Pixel")?.unwrap_or(1);
    let bytes = number(obj, tags::BITS_ALLOCATED, "Bits Allocated")?
        .unwrap_or(8)
        .div_ceil(8);
    let need = u64::from(header.width)
        * u64::from(header.height)
        * u64::from(samples)
        * u64::from(bytes)
        * u64::from(header.info.frames);
    let have = pixels
        .value()
        .primitive()
        .map_or(0, |p| p.calculate_byte_len()) as u64;
    if have < need {
        return Err(DecodeError(format!(
            "truncated DICOM pixel data: {have} bytes for the {need} of {} frames",
            header.info.frames
        )));
    }
    Ok(())
}

fn header_of(obj: &DefaultDicomObject) -> Result<DicomHeader, DecodeError> {
    let modality = text(obj, tags::MODALITY, "Modality")?.unwrap_or_default();
    if modality != "US" {
        let shown = if modality.is_empty() {
            "absent".to_owned()
        } else {
            modality
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .take(8)
                .collect()
        };
        return Err(DecodeError(format!(
            "the DICOM file's Modality (0008,0060) is {shown}, not US: only ultrasound is accepted as DICOM"
        )));
    }
    let width = number(obj, tags::COLUMNS, "Columns")?
        .ok_or_else(|| DecodeError("the DICOM header has no Columns (0028,0011)".into()))?;
    let height = number(obj, tags::ROWS, "Rows")?
        .ok_or_else(|| DecodeError("the DICOM header has no Rows (0028,0010)".into()))?;
    super::decode::check_size(width, height)?;
    let frames = number(obj, tags::NUMBER_OF_FRAMES, "Number of Frames")?.unwrap_or(1);
    if frames == 0 {
        return Err(DecodeError(
            "the DICOM header's Number of Frames (0028,0008) is 0".into(),
        ));
    }
    let regions = regions(obj, width, height)?;
    let burned_in = text(obj, tags::BURNED_IN_ANNOTATION, "Burned In Annotation")?
        .map(|v| v.to_ascii_uppercase());
    let masked = burned_in.as_deref() != Some("NO");
    let info = DicomInfo {
        frames,
        frame: frames / 2,
        transfer_syntax: obj
            .meta()
            .transfer_syntax()
            .trim_end_matches('\0')
            .to_owned(),
        photometric_interpretation: text(
            obj,
            tags::PHOTOMETRIC_INTERPRETATION,
            "Photometric Interpretation",
        )?
        .unwrap_or_default(),
        pixel_spacing_mm: pixel_spacing(obj)?,
        burned_in_annotation: burned_in.filter(|v| v == "YES" || v == "NO"),
        masked,
        regions,
    };
    Ok(DicomHeader {
        width,
        height,
        info,
    })
}

fn located(name: &str, tag: dicom_core::Tag, e: impl std::fmt::Display) -> DecodeError {
    DecodeError(format!(
        "the DICOM attribute {name} ({:04X},{:04X}) is malformed: {e}",
        tag.group(),
        tag.element()
    ))
}

fn text(
    obj: &InMemDicomObject,
    tag: dicom_core::Tag,
    name: &str,
) -> Result<Option<String>, DecodeError> {
    let Some(el) = obj.element_opt(tag).map_err(|e| located(name, tag, e))? else {
        return Ok(None);
    };
    let value = el.to_str().map_err(|e| located(name, tag, e))?;
    Ok(Some(value.trim().trim_end_matches('\0').to_owned()))
}

fn number(
    obj: &InMemDicomObject,
    tag: dicom_core::Tag,
    name: &str,
) -> Result<Option<u32>, DecodeError> {
    obj.element_opt(tag)
        .map_err(|e| located(name, tag, e))?
        .map(|el| el.to_int::<u32>().map_err(|e| located(name, tag, e)))
        .transpose()
}

/// The ultrasound regions (Sequence of Ultrasound Regions, 0018,6011) as
/// pixel rectangles, clipped to the image.
fn regions(obj: &DefaultDicomObject, width: u32, height: u32) -> Result<Vec<Region>, DecodeError> {
    let tag = tags::SEQUENCE_OF_ULTRASOUND_REGIONS;
    let Some(seq) = obj
        .element_opt(tag)
        .map_err(|e| located("Sequence of Ultrasound Regions", tag, e))?
    else {
        return Ok(Vec::new());
    };
    let items = seq.items().unwrap_or_default();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let corner = |tag, name| {
            number(item, tag, name)?
                .ok_or_else(|| DecodeError(format!("ultrasound region {} has no {name}", i + 1)))
        };
        let region = Region {
            x0: corner(tags::REGION_LOCATION_MIN_X0, "Region Location Min X0")?,
            y0: corner(tags::REGION_LOCATION_MIN_Y0, "Region Location Min Y0")?,
            x1: corner(tags::REGION_LOCATION_MAX_X1, "Region Location Max X1")?,
            y1: corner(tags::REGION_LOCATION_MAX_Y1, "Region Location Max Y1")?,
        };
        if region.x0 > region.x1 || region.y0 > region.y1 {
            return Err(DecodeError(format!(
                "ultrasound region {} ({},{})–({},{}) has its corners swapped",
                i + 1,
                region.x0,
                region.y0,
                region.x1,
                region.y1
            )));
        }
        // Exports that rescale the pixels often keep the scanner's regions:
        // keep only what lies inside the image (less is kept, never more).
        if region.x0 < width && region.y0 < height {
            out.push(Region {
                x1: region.x1.min(width - 1),
                y1: region.y1.min(height - 1),
                ..region
            });
        }
    }
    Ok(out)
}

/// Pixel spacing in mm (x, y): from the first ultrasound region when its
/// physical units are cm, else from Pixel Spacing (0028,0030).
fn pixel_spacing(obj: &DefaultDicomObject) -> Result<Option<[f64; 2]>, DecodeError> {
    const CM: u32 = 3;
    if let Some(seq) = obj
        .element_opt(tags::SEQUENCE_OF_ULTRASOUND_REGIONS)
        .ok()
        .flatten()
        && let Some(first) = seq.items().and_then(|items| items.first())
    {
        let units = |tag, name| number(first, tag, name);
        let delta = |tag, name: &str| -> Result<Option<f64>, DecodeError> {
            first
                .element_opt(tag)
                .map_err(|e| located(name, tag, e))?
                .map(|el| el.to_float64().map_err(|e| located(name, tag, e)))
                .transpose()
        };
        if units(
            tags::PHYSICAL_UNITS_X_DIRECTION,
            "Physical Units X Direction",
        )? == Some(CM)
            && units(
                tags::PHYSICAL_UNITS_Y_DIRECTION,
                "Physical Units Y Direction",
            )? == Some(CM)
            && let (Some(dx), Some(dy)) = (
                delta(tags::PHYSICAL_DELTA_X, "Physical Delta X")?,
                delta(tags::PHYSICAL_DELTA_Y, "Physical Delta Y")?,
            )
        {
            return Ok(Some([dx * 10.0, dy * 10.0]));
        }
    }
    let tag = tags::PIXEL_SPACING;
    let Some(el) = obj
        .element_opt(tag)
        .map_err(|e| located("Pixel Spacing", tag, e))?
    else {
        return Ok(None);
    };
    let v = el
        .to_multi_float64()
        .map_err(|e| located("Pixel Spacing", tag, e))?;
    // Pixel Spacing is row spacing (y) then column spacing (x).
    Ok(match v.as_slice() {
        [y, x] => Some([*x, *y]),
        _ => None,
    })
}

/// One frame as 8-bit RGB, whatever its photometric interpretation and
/// planar configuration.
fn frame_rgb(obj: &DefaultDicomObject, frame: u32) -> Result<RgbImage, DecodeError> {
    let px = obj
        .decode_pixel_data_frame(frame)
        .map_err(|e| DecodeError(format!("the DICOM pixel data cannot be decoded: {e}")))?;
    let (w, h) = (px.columns(), px.rows());
    if px.bits_allocated() != 8 {
        return Err(DecodeError(format!(
            "the DICOM pixels have {} bits allocated; only 8-bit ultrasound is read",
            px.bits_allocated()
        )));
    }
    let n = w as usize * h as usize;
    let data = px.data();
    let samples = usize::from(px.samples_per_pixel());
    let pi = px.photometric_interpretation().clone();
    let need = match (&pi, samples) {
        (PhotometricInterpretation::YbrFull422, 3) => n * 2,
        (_, s) => n * s,
    };
    if data.len() < need {
        return Err(DecodeError(format!(
            "the DICOM pixel data holds {} bytes, fewer than the {need} of one {w}×{h} frame",
            data.len()
        )));
    }
    let planar = px.planar_configuration() == PlanarConfiguration::PixelFirst;
    let interleaved = |i: usize| -> [u8; 3] {
        if planar {
            [data[i], data[n + i], data[2 * n + i]]
        } else {
            [data[3 * i], data[3 * i + 1], data[3 * i + 2]]
        }
    };
    let mut out = Vec::with_capacity(n * 3);
    match (&pi, samples) {
        (PhotometricInterpretation::Rgb, 3) => (0..n).for_each(|i| out.extend(interleaved(i))),
        (PhotometricInterpretation::YbrFull, 3) => {
            (0..n).for_each(|i| out.extend(ybr_to_rgb(interleaved(i))));
        }
        (PhotometricInterpretation::YbrFull422, 3) => {
            // Y1 Y2 Cb Cr for each horizontal pair of pixels.
            for i in 0..n {
                let pair = i / 2 * 4;
                let y = data[pair + i % 2];
                out.extend(ybr_to_rgb([y, data[pair + 2], data[pair + 3]]));
            }
        }
        (PhotometricInterpretation::Monochrome2, 1) => {
            data[..n].iter().for_each(|&g| out.extend([g; 3]))
        }
        (PhotometricInterpretation::Monochrome1, 1) => {
            data[..n].iter().for_each(|&g| out.extend([255 - g; 3]));
        }
        (other, s) => {
            return Err(DecodeError(format!(
                "the DICOM photometric interpretation {other} with {s} samples per pixel is not read (RGB, YBR_FULL, YBR_FULL_422, MONOCHROME1/2 are)"
            )));
        }
    }
    RgbImage::from_raw(w, h, out)
        .ok_or_else(|| DecodeError(format!("the DICOM pixels do not fill {w}×{h} RGB pixels")))
}

/// Full-range BT.601 YCbCr to RGB (DICOM PS3.3 C.7.6.3.1.2, as JPEG).
pub(crate) fn ybr_to_rgb([y, cb, cr]: [u8; 3]) -> [u8; 3] {
    let (y, cb, cr) = (f32::from(y), f32::from(cb) - 128.0, f32::from(cr) - 128.0);
    let clamp = |v: f32| v.round().clamp(0.0, 255.0) as u8;
    [
        clamp(y + 1.402 * cr),
        clamp(y - 0.344_136 * cb - 0.714_136 * cr),
        clamp(y + 1.772 * cb),
    ]
}

/// Black out every pixel outside the union of `regions`.
fn mask_outside(rgb: &mut RgbImage, regions: &[Region]) {
    for (x, y, px) in rgb.enumerate_pixels_mut() {
        if !regions.iter().any(|r| r.contains(x, y)) {
            px.0 = [0, 0, 0];
        }
    }
}
