//! Query parameters, read and removed by one parser (`form_urlencoded`), so
//! that what authenticates a request is exactly what is stripped from it
//! before it is forwarded: `?access%5Ftoken=KEY` is the parameter
//! `access_token` both when the key is checked and when it is removed.

/// The first value of parameter `name` in `query`, decoded.
pub fn get(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// `query` without any parameter whose decoded name is `name`; the other
/// pairs are kept as they were sent (still encoded, in order).
pub fn without(query: &str, name: &str) -> String {
    query
        .split('&')
        .filter(|pair| {
            !pair.is_empty()
                && form_urlencoded::parse(pair.as_bytes())
                    .next()
                    .is_none_or(|(key, _)| key != name)
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_names_are_the_same_parameter_for_both() {
        for query in [
            "access_token=k&a=1",
            "access%5Ftoken=k&a=1",
            "%61ccess_token=k&a=1",
            "a=1&access_token=k",
        ] {
            assert_eq!(get(query, "access_token").as_deref(), Some("k"), "{query}");
            assert_eq!(without(query, "access_token"), "a=1", "{query}");
        }
        assert_eq!(get("a=1&b=k%2By", "b").as_deref(), Some("k+y"));
        assert_eq!(without("path=%2Fetc&&x=1", "token"), "path=%2Fetc&x=1");
        assert_eq!(without("access_token=1&access_token=2", "access_token"), "");
        assert_eq!(get("a=1", "access_token"), None);
    }
}
