// Numbers as they are written in a JSON text, before a parser rounds them.
//
// Boost.JSON reads an integer that does not fit in 64 bits as a double: a
// 30-digit integer silently becomes 1.2345678901234568E29, and one of 400
// digits (like 1e400) becomes infinity, which serializes as the non-JSON
// "Infinity". Once parsed, the rounded integer cannot be told from a number
// written with an exponent; only the text can. A request body is checked
// with this before its values are used, so that a client learns its number
// was refused rather than changed.
//
// Pure function of its arguments; safe from any thread.
#pragma once

#include <boost/json/parse_options.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace nightshift {

// The first number in the JSON text `text` that JSON cannot carry exactly:
// an integer (no fraction, no exponent) beyond 64 bits, or any number beyond
// a double's range. Returns why, naming its path from the document's root
// ("params.count is an integer too large to carry exactly (at most 64
// bits)", "params.list[2] is not a finite number"), or nothing: also when
// the text is not JSON at all, which the caller's own parse reports.
std::optional<std::string> find_inexact_number(std::string_view text,
                                               const boost::json::parse_options& options = {});

}  // namespace nightshift
