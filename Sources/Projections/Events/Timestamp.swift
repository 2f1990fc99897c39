import Foundation

// RFC 3339 timestamps with exactly six fractional digits, done with integer
// civil-date arithmetic (Howard Hinnant's algorithms) so it is fast and needs no
// locale, calendar object or lock.

/// The wall clock in microseconds since the Unix epoch: the unit of every event timestamp,
/// session expiry and `as-of` time.
public func currentMicros() -> Int64 {
    Int64(Date().timeIntervalSince1970 * 1_000_000)
}

/// `2026-11-24T19:11:55.123456Z` for microseconds since the Unix epoch, UTC.
public func formatTimestamp(_ micros: Int64) -> String {
    var out = [UInt8]()
    out.reserveCapacity(27)
    appendTimestamp(micros, to: &out)
    return String(decoding: out, as: UTF8.self)
}

public func appendTimestamp(_ micros: Int64, to out: inout [UInt8]) {
    let (secs, frac) = floorDivMod(micros, 1_000_000)
    let (days, secOfDay) = floorDivMod(secs, 86_400)
    let (year, month, day) = civilFromDays(days)
    if year < 0 { out.append(UInt8(ascii: "-")) }
    appendPadded(year.magnitude, width: 4, to: &out)
    out.append(UInt8(ascii: "-"))
    appendPadded(UInt64(month), width: 2, to: &out)
    out.append(UInt8(ascii: "-"))
    appendPadded(UInt64(day), width: 2, to: &out)
    out.append(UInt8(ascii: "T"))
    appendPadded(UInt64(secOfDay / 3600), width: 2, to: &out)
    out.append(UInt8(ascii: ":"))
    appendPadded(UInt64(secOfDay / 60 % 60), width: 2, to: &out)
    out.append(UInt8(ascii: ":"))
    appendPadded(UInt64(secOfDay % 60), width: 2, to: &out)
    out.append(UInt8(ascii: "."))
    appendPadded(UInt64(frac), width: 6, to: &out)
    out.append(UInt8(ascii: "Z"))
}

/// Parses RFC 3339 (`YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`) to microseconds;
/// digits past the sixth fractional one are truncated. Nil for anything else.
public func parseTimestamp(_ text: String) -> Int64? {
    let s = Array(text.utf8)
    var i = 0
    func number(_ width: Int) -> Int64? {
        guard i + width <= s.count else { return nil }
        var v: Int64 = 0
        for k in i..<(i + width) {
            let c = s[k]
            guard c >= 48 && c <= 57 else { return nil }
            v = v * 10 + Int64(c - 48)
        }
        i += width
        return v
    }
    func expect(_ chars: String) -> Bool {
        guard i < s.count, chars.utf8.contains(s[i]) else { return false }
        i += 1
        return true
    }
    guard let year = number(4), expect("-"), let month = number(2), expect("-"), let day = number(2),
          expect("Tt "), let hour = number(2), expect(":"), let minute = number(2), expect(":"),
          let second = number(2)
    else { return nil }
    guard (1...12).contains(month), day >= 1, day <= daysInMonth(year, month),
          hour < 24, minute < 60, second < 60
    else { return nil }
    var micros: Int64 = 0
    if i < s.count, s[i] == UInt8(ascii: ".") {
        i += 1
        var digits = 0
        while i < s.count, s[i] >= 48, s[i] <= 57 {
            if digits < 6 { micros = micros * 10 + Int64(s[i] - 48) }
            digits += 1
            i += 1
        }
        guard digits > 0 else { return nil }
        for _ in digits..<max(digits, 6) { micros *= 10 }
    }
    var offsetSeconds: Int64 = 0
    guard i < s.count else { return nil }
    if s[i] == UInt8(ascii: "Z") || s[i] == UInt8(ascii: "z") {
        i += 1
    } else if s[i] == UInt8(ascii: "+") || s[i] == UInt8(ascii: "-") {
        let sign: Int64 = s[i] == UInt8(ascii: "+") ? 1 : -1
        i += 1
        guard let oh = number(2), expect(":"), let om = number(2), oh < 24, om < 60 else { return nil }
        offsetSeconds = sign * (oh * 3600 + om * 60)
    } else {
        return nil
    }
    guard i == s.count else { return nil }
    let days = daysFromCivil(year, month, day)
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offsetSeconds
    return seconds * 1_000_000 + micros
}

private func floorDivMod(_ a: Int64, _ b: Int64) -> (Int64, Int64) {
    var q = a / b
    var r = a % b
    if r < 0 {
        r += b
        q -= 1
    }
    return (q, r)
}

private func civilFromDays(_ days: Int64) -> (year: Int64, month: Int64, day: Int64) {
    let z = days + 719_468
    let era = (z >= 0 ? z : z - 146_096) / 146_097
    let doe = z - era * 146_097
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
    let mp = (5 * doy + 2) / 153
    let day = doy - (153 * mp + 2) / 5 + 1
    let month = mp < 10 ? mp + 3 : mp - 9
    return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
}

private func daysFromCivil(_ year: Int64, _ month: Int64, _ day: Int64) -> Int64 {
    let y = month <= 2 ? year - 1 : year
    let era = (y >= 0 ? y : y - 399) / 400
    let yoe = y - era * 400
    let mp = month > 2 ? month - 3 : month + 9
    let doy = (153 * mp + 2) / 5 + day - 1
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
    return era * 146_097 + doe - 719_468
}

private func daysInMonth(_ year: Int64, _ month: Int64) -> Int64 {
    switch month {
    case 2:
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
        return leap ? 29 : 28
    case 4, 6, 9, 11: return 30
    default: return 31
    }
}

private func appendPadded(_ value: UInt64, width: Int, to out: inout [UInt8]) {
    var digits = 1
    var v = value
    while v >= 10 {
        v /= 10
        digits += 1
    }
    for _ in digits..<max(digits, width) { out.append(UInt8(ascii: "0")) }
    appendDecimal(value, to: &out)
}

/// Appends the decimal digits of `value` without going through `String`.
public func appendDecimal(_ value: UInt64, to out: inout [UInt8]) {
    var digits = 1
    var v = value
    while v >= 10 {
        v /= 10
        digits += 1
    }
    let start = out.count
    out.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: digits))
    var x = value
    var i = start + digits - 1
    repeat {
        out[i] = UInt8(ascii: "0") + UInt8(x % 10)
        x /= 10
        i -= 1
    } while x > 0
}
