// Package useragent names the browser and system in a User-Agent header, well
// enough to tell a user's sessions apart ("Firefox on Linux").
package useragent

import "strings"

// Device is what a User-Agent says about the client.
type Device struct {
	Browser string // "Chrome", "Firefox", "Safari", "Edge", "curl", "Go HTTP client", ...
	OS      string // "Windows", "macOS", "Linux", "Android", "iOS", "" when unknown
}

// String is "Browser on OS", or the browser alone.
func (d Device) String() string {
	if d.OS == "" {
		return d.Browser
	}
	return d.Browser + " on " + d.OS
}

// Parse reads a User-Agent header.
func Parse(ua string) Device {
	var d Device
	// Order matters: Edge and Chrome say "Safari", Edge says "Chrome",
	// Android says "Linux", iOS browsers say "Mac OS X".
	switch {
	case ua == "":
		d.Browser = "Unknown client"
	case strings.HasPrefix(ua, "curl/"):
		d.Browser = "curl"
	case strings.HasPrefix(ua, "Go-http-client/"):
		d.Browser = "Go HTTP client"
	case has(ua, "Edg/", "EdgA/", "EdgiOS/"):
		d.Browser = "Edge"
	case has(ua, "Firefox/", "FxiOS/"):
		d.Browser = "Firefox"
	case has(ua, "HeadlessChrome/"):
		d.Browser = "Headless Chrome"
	case has(ua, "Chrome/", "CriOS/", "Chromium/"):
		d.Browser = "Chrome"
	case has(ua, "Safari/") && has(ua, "Version/"):
		d.Browser = "Safari"
	default:
		d.Browser = "Unknown browser"
	}
	switch {
	case has(ua, "iPhone", "iPad", "iPod"):
		d.OS = "iOS"
	case has(ua, "Android"):
		d.OS = "Android"
	case has(ua, "Windows"):
		d.OS = "Windows"
	case has(ua, "Mac OS X", "Macintosh"):
		d.OS = "macOS"
	case has(ua, "CrOS"):
		d.OS = "ChromeOS"
	case has(ua, "Linux", "X11"):
		d.OS = "Linux"
	}
	return d
}

func has(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
