package sessions

import "time"

// unmarshalTime is t.UnmarshalJSON(raw), reading the times this package
// writes (UTC, RFC 3339 with a fraction of up to nine digits:
// "2026-12-06T08:16:49.007Z") digit by digit; any other form goes to
// UnmarshalJSON. A decode reads three (the deadline, last seen, the origin),
// and time's RFC 3339 parser was 2 % of a page's instructions.
func unmarshalTime(t *time.Time, raw []byte) error {
	if u, ok := plainUTC(raw); ok {
		*t = u
		return nil
	}
	return t.UnmarshalJSON(raw)
}

// plainUTC reads "YYYY-MM-DDThh:mm:ss[.f…]Z", quotes included, with
// UnmarshalJSON's range checks; ok false for anything else.
func plainUTC(raw []byte) (_ time.Time, ok bool) {
	n := len(raw)
	if n < len(`"2006-01-02T15:04:05Z"`) || raw[0] != '"' || raw[n-1] != '"' || raw[n-2] != 'Z' ||
		raw[5] != '-' || raw[8] != '-' || raw[11] != 'T' || raw[14] != ':' || raw[17] != ':' {
		return time.Time{}, false
	}
	century, yy := twoDigits(raw[1], raw[2]), twoDigits(raw[3], raw[4])
	month, day := twoDigits(raw[6], raw[7]), twoDigits(raw[9], raw[10])
	hour, minute, sec := twoDigits(raw[12], raw[13]), twoDigits(raw[15], raw[16]), twoDigits(raw[18], raw[19])
	year := century*100 + yy
	if century < 0 || yy < 0 || month < 1 || month > 12 || day < 1 || day > daysIn(month, year) ||
		hour < 0 || hour > 23 || minute < 0 || minute > 59 || sec < 0 || sec > 59 {
		return time.Time{}, false
	}
	ns := 0
	if frac := raw[20 : n-2]; len(frac) > 0 {
		if frac[0] != '.' || len(frac) < 2 || len(frac) > 10 {
			return time.Time{}, false
		}
		for _, c := range frac[1:] {
			if c < '0' || c > '9' {
				return time.Time{}, false
			}
			ns = ns*10 + int(c-'0')
		}
		ns *= pow10[10-len(frac)]
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, ns, time.UTC), true
}

var pow10 = [...]int{1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8}

// twoDigits is the number two digits write, or -1 if either is not a digit.
func twoDigits(hi, lo byte) int {
	if hi-'0' > 9 || lo-'0' > 9 {
		return -1
	}
	return int(hi-'0')*10 + int(lo-'0')
}

func daysIn(month, year int) int {
	if month == 2 && year%4 == 0 && (year%100 != 0 || year%400 == 0) {
		return 29
	}
	return int("\x1f\x1c\x1f\x1e\x1f\x1e\x1f\x1f\x1e\x1f\x1e\x1f"[month-1])
}
