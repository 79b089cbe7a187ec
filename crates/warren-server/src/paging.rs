//! `limit` and `cursor` of list routes.

use serde::Deserialize;
use utoipa::IntoParams;
use warren_api::Problem;

use crate::store::cursor;

/// Default page size.
pub const DEFAULT_LIMIT: u32 = 100;

/// Largest page size.
pub const MAX_LIMIT: u32 = 1000;

/// `?limit=&cursor=`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1 to 1000 (default 100).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A validated page request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Items after this position.
    pub after_seq: Option<i64>,
    /// Page size.
    pub limit: u32,
}

impl Page {
    /// Validates `limit` and decodes `cursor`.
    pub fn parse(limit: Option<u32>, cursor: Option<&str>) -> Result<Page, Problem> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(Problem::invalid(format!(
                "limit must be between 1 and {MAX_LIMIT}"
            )));
        }
        let after_seq = match cursor {
            None | Some("") => None,
            Some(c) => Some(
                cursor::decode(c)
                    .ok_or_else(|| Problem::invalid("cursor is not a valid cursor"))?,
            ),
        };
        Ok(Page { after_seq, limit })
    }

    /// Splits `rows` fetched with `limit + 1` into the page and the cursor of
    /// the next one (`None` on the last page).
    pub fn finish<T>(self, mut rows: Vec<T>, seq: impl Fn(&T) -> i64) -> (Vec<T>, Option<String>) {
        if rows.len() > self.limit as usize {
            rows.truncate(self.limit as usize);
            let next = rows.last().map(|r| cursor::encode(seq(r)));
            (rows, next)
        } else {
            (rows, None)
        }
    }

    /// How many rows to fetch: one more than the page, to know if another follows.
    pub fn fetch(self) -> u32 {
        self.limit + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_split_and_validate() {
        let page = Page::parse(Some(2), None).unwrap();
        let (items, next) = page.finish(vec![1i64, 2, 3], |x| *x);
        assert_eq!(items, vec![1, 2]);
        let next = next.unwrap();
        assert_eq!(
            Page::parse(Some(2), Some(&next)).unwrap().after_seq,
            Some(2)
        );
        let (items, next) = page.finish(vec![1i64, 2], |x| *x);
        assert_eq!((items.len(), next), (2, None));
        assert!(Page::parse(Some(0), None).is_err());
        assert!(Page::parse(Some(MAX_LIMIT + 1), None).is_err());
        assert!(Page::parse(None, Some("garbage")).is_err());
    }
}
