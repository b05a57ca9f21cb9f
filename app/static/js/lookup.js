/* Relation fields that search as you type (app/views/related.py): select2 asks the view's
   JSON endpoint for a few matches of the typed text instead of listing every row.
   Search forms: a relation's natural-key filter ("номер равен") is the one offered first,
   not FAB's filter by record id that links use. */
(function ($) {
  $("select.portal-lookup").each(function () {
    var $field = $(this);
    $field.select2({
      theme: "bootstrap",
      width: "100%",
      placeholder: $field.data("placeholder"),
      allowClear: $field.data("required") !== 1,
      minimumInputLength: 1,
      ajax: {
        url: $field.data("lookup-url"),
        dataType: "json",
        delay: 250,
        cache: true,
        data: function (params) { return {q: params.term}; },
        processResults: function (data) { return {results: data.results}; }
      }
    });
  });

  $(document).on("click", "#filter_form a.filter", function () {
    var column = $(this).attr("name");
    var $row = $("#filter_form .filters tr").last();
    var $value = $row.find(".filter_val");
    var index = $value.data("filter-default");
    if (index === undefined) {
      return;
    }
    $row.find("select.filter-op").val(String(index)).trigger("change");
    $value.attr("name", "_flt_" + index + "_" + column);
  });
})(jQuery);
