/* Russian for the widgets FAB ships in English: the date picker and the select boxes.
   Runs before FAB's own ready handler in ab.js initialises them. */
(function ($) {
  /* FAB's empty choice of an optional relation would read "__None". */
  $('option[value="__None"]').text("—");
  if ($.fn.datepicker) {
    $.fn.datepicker.dates.ru = {
      days: ["Воскресенье", "Понедельник", "Вторник", "Среда", "Четверг", "Пятница", "Суббота"],
      daysShort: ["Вск", "Пнд", "Втр", "Срд", "Чтв", "Птн", "Суб"],
      daysMin: ["Вс", "Пн", "Вт", "Ср", "Чт", "Пт", "Сб"],
      months: ["Январь", "Февраль", "Март", "Апрель", "Май", "Июнь", "Июль", "Август",
               "Сентябрь", "Октябрь", "Ноябрь", "Декабрь"],
      monthsShort: ["Янв", "Фев", "Мар", "Апр", "Май", "Июн", "Июл", "Авг", "Сен", "Окт",
                    "Ноя", "Дек"],
      today: "Сегодня",
      clear: "Очистить",
      format: "yyyy-mm-dd",
      weekStart: 1,
      monthsTitle: "Месяцы"
    };
    $.fn.datepicker.defaults.language = "ru";
    $.fn.datepicker.defaults.weekStart = 1;
  }
  if ($.fn.select2 && $.fn.select2.defaults) {
    $.fn.select2.defaults.set("language", {
      noResults: function () { return "Ничего не найдено"; },
      searching: function () { return "Поиск…"; },
      loadingMore: function () { return "Загрузка…"; },
      errorLoading: function () { return "Не удалось загрузить варианты"; },
      removeAllItems: function () { return "Убрать всё"; },
      inputTooShort: function () { return "Введите ещё несколько символов"; }
    });
  }
})(jQuery);
