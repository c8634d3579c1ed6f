package shared

// DefaultHiddenWords is the shipped default list of words a words poll
// never shows (each poll adds its own blocklist and operator bans).
//
// Source: written by hand for edgepoll (no list of known provenance and
// licence could be obtained for the build), so it is deliberately short:
// common English slurs and obscenities, in normal form (NormalizeWord). It
// is a floor, not a moderation policy: operators extend it per poll with a
// blocklist and with `pollctl words ban` during a show.
var DefaultHiddenWords = []string{
	"asshole", "bastard", "bitch", "bollocks", "bullshit", "chink", "cock",
	"cunt", "dick", "dyke", "fag", "faggot", "fuck", "fucker", "fucking",
	"gook", "kike", "motherfucker", "nigga", "nigger", "paki", "prick",
	"pussy", "retard", "shit", "slut", "spic", "tranny", "twat", "wank",
	"wanker", "wetback", "whore",
}
