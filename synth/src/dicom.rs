//! Ultrasound as PACS exports it: a DICOM Part 10 file (Ultrasound
//! Multi-frame Image Storage, JPEG baseline, YBR_FULL_422) with a fake
//! patient in the header and burned into the top banner, so that the
//! site's de-identification is tested on real identifiers.

use crate::SynthError;
use crate::canvas::Canvas;
use crate::font::draw_text;
use dicom_core::value::{DataSetSequence, PixelFragmentSequence};
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::mem::InMemDicomObject;
use dicom_object::meta::FileMetaTableBuilder;
use image::RgbImage;
use std::path::Path;

/// Rows of the top banner that carry the patient's name, ID and birth
/// date; the ultrasound region starts below it.
pub(crate) const BANNER_ROWS: u32 = 36;

/// A fake patient: what a PACS export would carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FakePatient {
    /// Patient's Name, `FAMILY^GIVEN`.
    pub name: String,
    /// Patient ID (a medical record number).
    pub id: String,
    /// Patient's Birth Date, `YYYYMMDD`.
    pub birth_date: String,
    /// Institution Name.
    pub institution: String,
}

impl FakePatient {
    /// The fake patient of case `number` (1-based) of `site`, born `age`
    /// years before `exam_date` (`YYYY-MM-DD`).
    pub(crate) fn new(site: &str, number: usize, age: u32, exam_date: &str, mrn: u32) -> Self {
        let year: u32 = exam_date
            .get(..4)
            .and_then(|y| y.parse().ok())
            .unwrap_or(2020);
        let month_day = exam_date.get(5..10).unwrap_or("01-01").replace('-', "");
        Self {
            name: format!("FAKENAME{number:05}^{site}"),
            id: format!("MRN{mrn:08}"),
            birth_date: format!("{}{month_day}", year.saturating_sub(age)),
            institution: format!("{site} SYNTHETIC HOSPITAL"),
        }
    }

    /// Burn the name, ID and birth date into the top banner of `canvas`,
    /// between the scanner's own labels.
    pub(crate) fn burn_banner(&self, canvas: &mut Canvas) {
        let white = [235.0, 235.0, 235.0];
        let name = self.name.replace('^', " ");
        draw_text(canvas, 150, 8, &name, 1, white);
        draw_text(
            canvas,
            150,
            20,
            &format!("ID {}  DOB {}", self.id, self.birth_date),
            1,
            white,
        );
    }
}

/// Write `frames` as a DICOM ultrasound cine loop of `patient`, the
/// ultrasound region below the banner calibrated at `mm_per_px`.
pub(crate) fn write_ultrasound(
    path: &Path,
    frames: &[RgbImage],
    patient: &FakePatient,
    exam_date: &str,
    instance: u64,
    mm_per_px: f64,
) -> Result<(), SynthError> {
    let err = |e: String| SynthError::Io {
        path: path.to_owned(),
        source: std::io::Error::other(e),
    };
    let (width, height) = frames
        .first()
        .map(RgbImage::dimensions)
        .ok_or_else(|| err("no frames".into()))?;
    let mut fragments = Vec::with_capacity(frames.len());
    for frame in frames {
        fragments.push(crate::output::encode_jpeg(path, frame)?);
    }
    let uid = format!("2.25.{instance}");
    let date = exam_date.replace('-', "");
    let mut obj = InMemDicomObject::new_empty();
    let mut put = |tag, vr, value: PrimitiveValue| obj.put(DataElement::new(tag, vr, value));
    put(
        tags::SOP_CLASS_UID,
        VR::UI,
        uids::ULTRASOUND_MULTI_FRAME_IMAGE_STORAGE.into(),
    );
    put(tags::SOP_INSTANCE_UID, VR::UI, uid.clone().into());
    put(tags::STUDY_DATE, VR::DA, date.clone().into());
    put(
        tags::ACCESSION_NUMBER,
        VR::SH,
        format!("ACC{instance:010}")
            .get(..16)
            .unwrap_or("ACC")
            .into(),
    );
    put(tags::MODALITY, VR::CS, "US".into());
    put(
        tags::INSTITUTION_NAME,
        VR::LO,
        patient.institution.clone().into(),
    );
    put(
        tags::REFERRING_PHYSICIAN_NAME,
        VR::PN,
        "FAKEDOCTOR^SYNTH".into(),
    );
    put(tags::PATIENT_NAME, VR::PN, patient.name.clone().into());
    put(tags::PATIENT_ID, VR::LO, patient.id.clone().into());
    put(
        tags::PATIENT_BIRTH_DATE,
        VR::DA,
        patient.birth_date.clone().into(),
    );
    put(tags::STUDY_INSTANCE_UID, VR::UI, format!("{uid}.1").into());
    put(tags::SERIES_INSTANCE_UID, VR::UI, format!("{uid}.2").into());
    put(tags::SAMPLES_PER_PIXEL, VR::US, PrimitiveValue::from(3_u16));
    put(
        tags::PHOTOMETRIC_INTERPRETATION,
        VR::CS,
        "YBR_FULL_422".into(),
    );
    put(
        tags::PLANAR_CONFIGURATION,
        VR::US,
        PrimitiveValue::from(0_u16),
    );
    put(
        tags::NUMBER_OF_FRAMES,
        VR::IS,
        frames.len().to_string().into(),
    );
    put(tags::ROWS, VR::US, PrimitiveValue::from(height as u16));
    put(tags::COLUMNS, VR::US, PrimitiveValue::from(width as u16));
    put(tags::BITS_ALLOCATED, VR::US, PrimitiveValue::from(8_u16));
    put(tags::BITS_STORED, VR::US, PrimitiveValue::from(8_u16));
    put(tags::HIGH_BIT, VR::US, PrimitiveValue::from(7_u16));
    put(
        tags::PIXEL_REPRESENTATION,
        VR::US,
        PrimitiveValue::from(0_u16),
    );
    put(tags::BURNED_IN_ANNOTATION, VR::CS, "YES".into());
    put(tags::LOSSY_IMAGE_COMPRESSION, VR::CS, "01".into());
    let mut region = InMemDicomObject::new_empty();
    let mut item = |tag, vr, value: PrimitiveValue| region.put(DataElement::new(tag, vr, value));
    item(
        tags::REGION_SPATIAL_FORMAT,
        VR::US,
        PrimitiveValue::from(1_u16),
    );
    item(tags::REGION_DATA_TYPE, VR::US, PrimitiveValue::from(1_u16));
    item(
        tags::REGION_LOCATION_MIN_X0,
        VR::UL,
        PrimitiveValue::from(0_u32),
    );
    item(
        tags::REGION_LOCATION_MIN_Y0,
        VR::UL,
        PrimitiveValue::from(BANNER_ROWS),
    );
    item(
        tags::REGION_LOCATION_MAX_X1,
        VR::UL,
        PrimitiveValue::from(width - 1),
    );
    item(
        tags::REGION_LOCATION_MAX_Y1,
        VR::UL,
        PrimitiveValue::from(height - 1),
    );
    // Physical units 3: centimetres.
    item(
        tags::PHYSICAL_UNITS_X_DIRECTION,
        VR::US,
        PrimitiveValue::from(3_u16),
    );
    item(
        tags::PHYSICAL_UNITS_Y_DIRECTION,
        VR::US,
        PrimitiveValue::from(3_u16),
    );
    item(
        tags::PHYSICAL_DELTA_X,
        VR::FD,
        PrimitiveValue::from(mm_per_px / 10.0),
    );
    item(
        tags::PHYSICAL_DELTA_Y,
        VR::FD,
        PrimitiveValue::from(mm_per_px / 10.0),
    );
    obj.put(DataElement::new(
        tags::SEQUENCE_OF_ULTRASOUND_REGIONS,
        VR::SQ,
        DataSetSequence::from(vec![region]),
    ));
    obj.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OB,
        PixelFragmentSequence::new_fragments(fragments),
    ));
    let file = obj
        .with_meta(FileMetaTableBuilder::new().transfer_syntax(uids::JPEG_BASELINE8_BIT))
        .map_err(|e| err(e.to_string()))?;
    let mut bytes = Vec::new();
    file.write_all(&mut bytes).map_err(|e| err(e.to_string()))?;
    crate::output::write_bytes(path, &bytes)
}
