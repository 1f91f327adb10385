package schedule_test

import (
	"fmt"
	"time"

	"github.com/seed-eeb360f6/hogsend/services/journeys/schedule"
)

// Scenario 32 of spec 10: 02:30 tomorrow does not exist in New York (clocks
// jump from 02:00 to 03:00), so it becomes 03:30, and the 09:00–17:00 window
// then moves it to 09:00.
func Example() {
	ny, _ := time.LoadLocation("America/New_York")
	now := time.Date(2025, 3, 8, 20, 0, 0, 0, ny) // Saturday evening

	at, err := schedule.New(now, ny).Window("09:00", "17:00").NextLocal("02:30").Time()
	if err != nil {
		panic(err)
	}
	fmt.Println(at.In(ny))
	fmt.Println(at)
	// Output:
	// 2025-03-09 09:00:00 -0400 EDT
	// 2025-03-09 13:00:00 +0000 UTC
}

// An overnight window: a time in the daytime gap waits for the evening.
func ExampleWhen_Window() {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	now := time.Date(2025, 6, 10, 12, 0, 0, 0, berlin)
	base := schedule.New(now, berlin).Window("22:00", "06:00")

	for _, t := range []string{"14:00", "23:30"} {
		at, _ := base.NextLocal(t).Time()
		fmt.Println(t, "->", at.In(berlin).Format("Mon 02 Jan 15:04"))
	}
	// Output:
	// 14:00 -> Tue 10 Jun 22:00
	// 23:30 -> Tue 10 Jun 23:30
}

// Next includes today; a time already past today moves a week on.
func ExampleWhen_Next() {
	ny, _ := time.LoadLocation("America/New_York")
	monday := time.Date(2025, 6, 9, 10, 0, 0, 0, ny)

	wd, err := schedule.ParseWeekday("mon")
	if err != nil {
		panic(err)
	}
	for _, t := range []string{"11:00", "09:00"} {
		at, _ := schedule.New(monday, ny).Next(wd).At(t).Time()
		fmt.Println(at.In(ny).Format("Mon 2006-01-02 15:04"))
	}
	// Output:
	// Mon 2025-06-09 11:00
	// Mon 2025-06-16 09:00
}

// IfPast(PastNow) sends at once instead of waiting a day, still inside the
// window.
func ExampleWhen_IfPast() {
	ny, _ := time.LoadLocation("America/New_York")
	now := time.Date(2025, 6, 10, 10, 15, 0, 0, ny)
	w := schedule.New(now, ny).Window("09:00", "17:00").NextLocal("09:00")

	next, _ := w.Time()
	immediate, _ := w.IfPast(schedule.PastNow).Time()
	fmt.Println(next.In(ny).Format("Jan 2 15:04"))
	fmt.Println(immediate.In(ny).Format("Jan 2 15:04"))
	// Output:
	// Jun 11 09:00
	// Jun 10 10:15
}

func ExampleWhen_Time_error() {
	_, err := schedule.New(time.Now(), time.UTC).Tomorrow().At("25:00").Time()
	fmt.Println(err)
	// Output:
	// schedule: tomorrow().at "25:00": hour out of range 0-23
}
