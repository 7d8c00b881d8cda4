//! Reading predictions.csv (RFC 4180) into [`Predictions`], with errors that
//! name the file, the line (header = line 1) and the column.

use crate::error::{StatsError, Where};
use crate::predictions::{
    BinaryCase, BinaryPredictions, Component, MulticlassCase, MulticlassPredictions, OrdinalPair,
    Predictions, Task, UniqueIds, check_classes, check_probability, check_row_sum,
};
use std::io::Read;
use std::path::Path;

/// Reads `path` as a predictions.csv of `task`.
pub fn read_predictions(path: &Path, task: Task) -> Result<Predictions, StatsError> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|err| StatsError::Read {
        file: name.clone(),
        err,
    })?;
    parse_predictions(&name, file, task)
}

/// Parses predictions.csv content from any reader; `source` names it in errors.
pub fn parse_predictions(
    source: &str,
    mut input: impl Read,
    task: Task,
) -> Result<Predictions, StatsError> {
    let mut bytes = Vec::new();
    input
        .read_to_end(&mut bytes)
        .map_err(|err| StatsError::Read {
            file: source.to_string(),
            err,
        })?;
    let bytes = nodal_types::text::lf_line_ends(&bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(bytes.as_ref());
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| csv_error(source, e))?
        .iter()
        .map(str::to_string)
        .collect();
    if header.iter().all(String::is_empty) {
        return Err(StatsError::Unusable {
            file: source.into(),
            message: "no header row".into(),
        });
    }
    for (i, name) in header.iter().enumerate() {
        if !name.is_empty() && header[..i].contains(name) {
            return Err(cell(
                source,
                1,
                name,
                format!("column \"{name}\" appears twice in the header"),
            ));
        }
    }
    let columns = Columns::new(source, &header, task)?;
    let mut rows = Rows {
        source,
        columns,
        ids: UniqueIds::default(),
    };
    let predictions = match task {
        Task::Binary => {
            let mut cases = Vec::new();
            for record in reader.records() {
                cases.push(rows.binary(&record.map_err(|e| csv_error(source, e))?)?);
            }
            Predictions::Binary(BinaryPredictions {
                source: source.to_string(),
                extra_columns: rows
                    .columns
                    .extra
                    .iter()
                    .map(|&i| header[i].clone())
                    .collect(),
                components: Component::ALL
                    .into_iter()
                    .filter(|&c| rows.columns.ordinal[c as usize].is_some())
                    .collect(),
                cases,
            })
        }
        Task::Multiclass => {
            let mut cases = Vec::new();
            for record in reader.records() {
                cases.push(rows.multiclass(&record.map_err(|e| csv_error(source, e))?)?);
            }
            Predictions::Multiclass(MulticlassPredictions {
                source: source.to_string(),
                classes: rows.columns.classes.clone(),
                readers: rows
                    .columns
                    .readers
                    .iter()
                    .map(|(name, _)| name.clone())
                    .collect(),
                cases,
            })
        }
    };
    if predictions.is_empty() {
        return Err(StatsError::Unusable {
            file: source.into(),
            message: "no data rows after the header".into(),
        });
    }
    Ok(predictions)
}

/// Positions of the columns a task uses.
struct Columns {
    header: Vec<String>,
    case_id: usize,
    site: usize,
    label: usize,
    score: usize,
    /// `(<prefix>_true, <prefix>_pred)` positions of each [`Component`].
    ordinal: [Option<(usize, usize)>; 3],
    extra: Vec<usize>,
    classes: Vec<String>,
    class_columns: Vec<usize>,
    readers: Vec<(String, usize)>,
}

impl Columns {
    fn new(source: &str, header: &[String], task: Task) -> Result<Self, StatsError> {
        let find = |name: &str| header.iter().position(|h| h == name);
        let require = |name: &str| {
            find(name).ok_or_else(|| {
                cell(
                    source,
                    1,
                    name,
                    format!(
                        "required column \"{name}\" is missing (header: {})",
                        header.join(",")
                    ),
                )
            })
        };
        let case_id = require("case_id")?;
        let site = require("site")?;
        let label = require("label")?;
        let mut columns = Columns {
            header: header.to_vec(),
            case_id,
            site,
            label,
            score: usize::MAX,
            ordinal: [None; 3],
            extra: Vec::new(),
            classes: Vec::new(),
            class_columns: Vec::new(),
            readers: Vec::new(),
        };
        match task {
            Task::Binary => {
                columns.score = require("score")?;
                for component in Component::ALL {
                    let truth = format!("{}_true", component.prefix());
                    let predicted = format!("{}_pred", component.prefix());
                    columns.ordinal[component as usize] = match (find(&truth), find(&predicted)) {
                        (Some(t), Some(p)) => Some((t, p)),
                        (None, None) => None,
                        (Some(_), None) => {
                            return Err(cell(
                                source,
                                1,
                                &predicted,
                                format!("column {truth} is given but {predicted} is missing"),
                            ));
                        }
                        (None, Some(_)) => {
                            return Err(cell(
                                source,
                                1,
                                &truth,
                                format!("column {predicted} is given but {truth} is missing"),
                            ));
                        }
                    };
                }
                let mut known = vec![case_id, site, label, columns.score];
                known.extend(columns.ordinal.iter().flatten().flat_map(|&(t, p)| [t, p]));
                columns.extra = (0..header.len()).filter(|i| !known.contains(i)).collect();
            }
            Task::Multiclass => {
                for (i, name) in header.iter().enumerate() {
                    if let Some(class) = name.strip_prefix("score_") {
                        columns.classes.push(class.to_string());
                        columns.class_columns.push(i);
                    } else if let Some(reader) = name.strip_prefix("reader_") {
                        columns.readers.push((reader.to_string(), i));
                    }
                }
                check_classes(source, &columns.classes)?;
            }
        }
        Ok(columns)
    }

    fn name(&self, index: usize) -> &str {
        &self.header[index]
    }
}

/// Parses rows one at a time, remembering case ids.
struct Rows<'a> {
    source: &'a str,
    columns: Columns,
    ids: UniqueIds,
}

impl Rows<'_> {
    fn err(&self, line: u64, column: usize, message: String) -> StatsError {
        cell(self.source, line, self.columns.name(column), message)
    }

    /// Case id and site, checked.
    fn identity(
        &mut self,
        record: &csv::StringRecord,
        line: u64,
    ) -> Result<(String, String), StatsError> {
        let case_id = record[self.columns.case_id].to_string();
        self.ids
            .insert(&case_id, format!("line {line}"))
            .map_err(|m| self.err(line, self.columns.case_id, m))?;
        let site = record[self.columns.site].to_string();
        if site.is_empty() {
            return Err(self.err(line, self.columns.site, "site is empty".into()));
        }
        Ok((case_id, site))
    }

    fn score(
        &self,
        record: &csv::StringRecord,
        line: u64,
        column: usize,
    ) -> Result<f64, StatsError> {
        let text = &record[column];
        if text.is_empty() {
            return Err(self.err(line, column, "score is missing".into()));
        }
        let value: f64 = text
            .parse()
            .map_err(|_| self.err(line, column, format!("score \"{text}\" is not a number")))?;
        check_probability(value).map_err(|m| self.err(line, column, m))?;
        Ok(value)
    }

    fn binary(&mut self, record: &csv::StringRecord) -> Result<BinaryCase, StatsError> {
        let line = record_line(record);
        let (case_id, site) = self.identity(record, line)?;
        let label = match &record[self.columns.label] {
            "" => None,
            "0" => Some(false),
            "1" => Some(true),
            other => {
                return Err(self.err(
                    line,
                    self.columns.label,
                    format!("label \"{other}\" is not 0, 1 or empty"),
                ));
            }
        };
        let score = self.score(record, line, self.columns.score)?;
        let optional = |column: Option<usize>| {
            column
                .map(|c| record[c].to_string())
                .filter(|v| !v.is_empty())
        };
        Ok(BinaryCase {
            case_id,
            site,
            label,
            score,
            ordinal: self.columns.ordinal.map(|pair| OrdinalPair {
                truth: optional(pair.map(|p| p.0)),
                predicted: optional(pair.map(|p| p.1)),
            }),
            extra: self
                .columns
                .extra
                .iter()
                .map(|&c| record[c].to_string())
                .collect(),
            line: Some(line),
        })
    }

    fn class_of(
        &self,
        text: &str,
        line: u64,
        column: usize,
        what: &str,
    ) -> Result<Option<usize>, StatsError> {
        if text.is_empty() {
            return Ok(None);
        }
        match self.columns.classes.iter().position(|c| c == text) {
            Some(k) => Ok(Some(k)),
            None => Err(self.err(
                line,
                column,
                format!(
                    "{what} \"{text}\" is not a known class ({})",
                    self.columns.classes.join(", ")
                ),
            )),
        }
    }

    fn multiclass(&mut self, record: &csv::StringRecord) -> Result<MulticlassCase, StatsError> {
        let line = record_line(record);
        let (case_id, site) = self.identity(record, line)?;
        let label = self.class_of(
            &record[self.columns.label],
            line,
            self.columns.label,
            "label",
        )?;
        let scores = self
            .columns
            .class_columns
            .iter()
            .map(|&c| self.score(record, line, c))
            .collect::<Result<Vec<f64>, _>>()?;
        check_row_sum(&scores).map_err(|m| cell(self.source, line, "score_*", m))?;
        let reader_calls = self
            .columns
            .readers
            .iter()
            .map(|(_, c)| self.class_of(&record[*c], line, *c, "reader call"))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(MulticlassCase {
            case_id,
            site,
            label,
            scores,
            reader_calls,
            line: Some(line),
        })
    }
}

fn record_line(record: &csv::StringRecord) -> u64 {
    record.position().map_or(0, csv::Position::line)
}

fn cell(source: &str, line: u64, column: &str, message: String) -> StatsError {
    StatsError::Invalid {
        file: source.to_string(),
        at: Where::Cell {
            line,
            column: column.to_string(),
        },
        message,
    }
}

/// Turns a csv parsing error into one naming the file and line.
fn csv_error(source: &str, err: csv::Error) -> StatsError {
    let line = err.position().map(csv::Position::line);
    let message = match err.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => {
            format!("row has {len} fields but the header has {expected_len}")
        }
        csv::ErrorKind::Utf8 { err, .. } => format!("field {} is not valid UTF-8", err.field() + 1),
        _ => err.to_string(),
    };
    if let csv::ErrorKind::Io(_) = err.kind() {
        return StatsError::Read {
            file: source.to_string(),
            err: std::io::Error::other(message),
        };
    }
    match line {
        Some(line) => StatsError::Invalid {
            file: source.to_string(),
            at: Where::Line(line),
            message,
        },
        None => StatsError::Unusable {
            file: source.to_string(),
            message,
        },
    }
}
