<?php
/**
 * The review queue and the inquiry list as WordPress list tables, paged by the bridge.
 *
 * @package KycBridge
 */

namespace KycBridge;

defined( 'ABSPATH' ) || exit;

if ( ! class_exists( '\WP_List_Table' ) ) {
	require_once ABSPATH . 'wp-admin/includes/class-wp-list-table.php';
}

/**
 * One page of inquiries from GET /api/v1/inquiries: sortable, filterable, searchable by name or
 * email. In QUEUE mode only cases waiting for a review, overdue first, longest waiting first.
 */
final class Inquiries_Table extends \WP_List_Table {

	const QUEUE = 'queue';
	const ALL   = 'inquiries';

	/**
	 * The columns a visitor may sort by, and the bridge's name for each.
	 */
	const SORTS = array(
		'name'      => 'name',
		'email'     => 'email',
		'status'    => 'status',
		'user_type' => 'user_type',
		'level'     => 'level',
		'updated'   => 'updated_at',
		'decided'   => 'decided_at',
		'waiting'   => 'waiting',
	);

	/**
	 * QUEUE or ALL.
	 *
	 * @var string
	 */
	private $mode;

	/**
	 * Where the rows come from.
	 *
	 * @var Bridge_Client
	 */
	private $client;

	/**
	 * Why the bridge gave no rows, if it did not.
	 *
	 * @var \WP_Error|null
	 */
	public $error = null;

	/**
	 * A table for one tab of the page.
	 *
	 * @param string        $mode   QUEUE or ALL.
	 * @param Bridge_Client $client Bridge client.
	 * @param array         $args   WP_List_Table arguments (screen).
	 */
	public function __construct( $mode, $client, $args = array() ) {
		$this->mode   = self::QUEUE === $mode ? self::QUEUE : self::ALL;
		$this->client = $client;
		parent::__construct(
			array_merge(
				array(
					'singular' => 'kycb-inquiry',
					'plural'   => 'kycb-inquiries',
					'ajax'     => false,
				),
				$args
			)
		);
	}

	/**
	 * Columns.
	 *
	 * @return array<string, string>
	 */
	public function get_columns() {
		$columns = array(
			'name'      => __( 'Person', 'kyc-bridge' ),
			'email'     => __( 'Email', 'kyc-bridge' ),
			'inquiry'   => __( 'Inquiry', 'kyc-bridge' ),
			'status'    => __( 'Status', 'kyc-bridge' ),
			'user_type' => __( 'User type', 'kyc-bridge' ),
			'level'     => __( 'Level', 'kyc-bridge' ),
		);
		if ( self::QUEUE === $this->mode ) {
			$columns['waiting'] = __( 'Waiting', 'kyc-bridge' );
		} else {
			$columns['updated'] = __( 'Updated', 'kyc-bridge' );
		}
		$columns['crm_sync'] = __( 'CRM sync', 'kyc-bridge' );
		return $columns;
	}

	/**
	 * Sortable columns: column => [orderby, initially descending].
	 *
	 * @return array
	 */
	protected function get_sortable_columns() {
		$sortable = array();
		foreach ( array_keys( $this->get_columns() ) as $column ) {
			if ( isset( self::SORTS[ $column ] ) ) {
				$sortable[ $column ] = array( $column, 'updated' === $column );
			}
		}
		return $sortable;
	}

	/**
	 * The column holding the row actions.
	 *
	 * @return string
	 */
	protected function get_default_primary_column_name() {
		return 'name';
	}

	/**
	 * Rows per page: the user's screen option.
	 *
	 * @return int
	 */
	public function rows_per_page() {
		return min( Admin_Page::MAX_PER_PAGE, max( 1, $this->get_items_per_page( Admin_Page::PER_PAGE_OPTION, Admin_Page::PER_PAGE ) ) );
	}

	/**
	 * The bridge's query for the current request: filters, order, page.
	 *
	 * @return array<string, string|int>
	 */
	public function query() {
		// phpcs:disable WordPress.Security.NonceVerification.Recommended, KycBridge.Security.NonceVerification.Recommended -- read-only list view.
		$orderby = isset( $_GET['orderby'] ) ? sanitize_key( wp_unslash( $_GET['orderby'] ) ) : '';
		$order   = isset( $_GET['order'] ) ? sanitize_key( wp_unslash( $_GET['order'] ) ) : '';
		$search  = isset( $_GET['s'] ) ? sanitize_text_field( wp_unslash( $_GET['s'] ) ) : '';
		// phpcs:enable
		$filters = Admin_Page::filters();
		$query   = array(
			'user_type' => $filters['user_type'],
			'level'     => $filters['level'],
			'search'    => mb_substr( $search, 0, 100 ),
			'page'      => $this->get_pagenum(),
			'per_page'  => $this->rows_per_page(),
		);
		if ( self::QUEUE === $this->mode ) {
			$query['status']        = 'needs_review';
			$query['overdue_first'] = isset( self::SORTS[ $orderby ] ) ? '' : '1';
			$query['sort']          = isset( self::SORTS[ $orderby ] ) ? self::SORTS[ $orderby ] : 'waiting';
			$query['order']         = isset( self::SORTS[ $orderby ] ) ? ( 'desc' === $order ? 'desc' : 'asc' ) : 'asc';
		} else {
			$query['status'] = $filters['status'];
			$query['sort']   = isset( self::SORTS[ $orderby ] ) ? self::SORTS[ $orderby ] : 'updated_at';
			$query['order']  = isset( self::SORTS[ $orderby ] ) ? ( 'asc' === $order ? 'asc' : 'desc' ) : 'desc';
		}
		return $query;
	}

	/**
	 * Ask the bridge for the page.
	 */
	public function prepare_items() {
		$this->_column_headers = array( $this->get_columns(), get_hidden_columns( $this->screen ), $this->get_sortable_columns(), 'name' );
		$page                  = $this->client->inquiries( $this->query() );
		if ( is_wp_error( $page ) ) {
			$this->error = $page;
			$this->items = array();
			return;
		}
		$this->items = isset( $page['items'] ) && is_array( $page['items'] ) ? $page['items'] : array();
		$per_page    = isset( $page['per_page'] ) ? (int) $page['per_page'] : $this->rows_per_page();
		$this->set_pagination_args(
			array(
				'total_items' => isset( $page['total'] ) ? (int) $page['total'] : 0,
				'per_page'    => max( 1, $per_page ),
				'total_pages' => isset( $page['pages'] ) ? (int) $page['pages'] : 0,
			)
		);
	}

	/**
	 * Said when no row matches.
	 */
	public function no_items() {
		if ( self::QUEUE === $this->mode ) {
			esc_html_e( 'No inquiry waits for a review.', 'kyc-bridge' );
		} else {
			esc_html_e( 'No inquiries match.', 'kyc-bridge' );
		}
	}

	/**
	 * Filters above the table (user type, level; status on the inquiries tab).
	 *
	 * @param string $which top or bottom.
	 */
	protected function extra_tablenav( $which ) {
		if ( 'top' !== $which ) {
			return;
		}
		$filters = Admin_Page::filters();
		echo '<div class="alignleft actions kycb-filters">';
		if ( self::ALL === $this->mode ) {
			echo '<label class="screen-reader-text" for="kycb-filter-status">' . esc_html__( 'Status', 'kyc-bridge' ) . '</label><select id="kycb-filter-status" name="status"><option value="">' . esc_html__( 'All statuses', 'kyc-bridge' ) . '</option>';
			foreach ( Admin_Page::status_labels() as $value => $label ) {
				if ( 'not_started' !== $value ) {
					printf( '<option value="%1$s"%2$s>%3$s</option>', esc_attr( $value ), selected( $filters['status'], $value, false ), esc_html( $label ) );
				}
			}
			echo '</select>';
		}
		echo '<label class="screen-reader-text" for="kycb-filter-type">' . esc_html__( 'User type', 'kyc-bridge' ) . '</label><select id="kycb-filter-type" name="user_type"><option value="">' . esc_html__( 'All user types', 'kyc-bridge' ) . '</option>';
		foreach ( Settings::user_type_labels() as $value => $label ) {
			printf( '<option value="%1$s"%2$s>%3$s</option>', esc_attr( $value ), selected( $filters['user_type'], $value, false ), esc_html( $label ) );
		}
		echo '</select><label class="screen-reader-text" for="kycb-filter-level">' . esc_html__( 'Level', 'kyc-bridge' ) . '</label><select id="kycb-filter-level" name="level"><option value="">' . esc_html__( 'All levels', 'kyc-bridge' ) . '</option>';
		foreach ( Admin_Page::level_labels() as $value => $label ) {
			printf( '<option value="%1$s"%2$s>%3$s</option>', esc_attr( $value ), selected( $filters['level'], $value, false ), esc_html( $label ) );
		}
		echo '</select>';
		submit_button( __( 'Filter', 'kyc-bridge' ), '', 'kycb-filter', false );
		echo '</div>';
	}

	/**
	 * One row, with the ids the tests and scripts look for.
	 *
	 * @param array $item Inquiry.
	 */
	public function single_row( $item ) {
		$status  = isset( $item['status'] ) ? (string) $item['status'] : '';
		$overdue = ! empty( $item['overdue'] );
		printf(
			'<tr class="kycb-row%1$s" data-inquiry-id="%2$s" data-status="%3$s">',
			$overdue ? ' kycb-overdue' : '',
			esc_attr( isset( $item['inquiry_id'] ) ? (string) $item['inquiry_id'] : '' ),
			esc_attr( $status )
		);
		$this->single_row_columns( $item );
		echo '</tr>';
	}

	/**
	 * The person's name (or a dash), and the actions on them.
	 *
	 * @param array $item Inquiry.
	 * @return string
	 */
	protected function column_name( $item ) {
		$email = isset( $item['email'] ) ? (string) $item['email'] : '';
		$name  = isset( $item['first_name'] ) && '' !== (string) $item['first_name'] ? (string) $item['first_name'] : '';
		$label = '' !== $name ? $name : ( '' !== $email ? __( '(no name)', 'kyc-bridge' ) : __( '(unknown person)', 'kyc-bridge' ) );
		if ( '' === $email ) {
			return '<span class="kycb-person">' . esc_html( $label ) . '</span>';
		}
		return '<strong><a class="row-title kycb-person" href="' . esc_url( Admin_Page::person_url( $email ) ) . '">' . esc_html( $label ) . '</a></strong>';
	}

	/**
	 * Row actions under the person: view, re-sync, retry, resend link, export.
	 *
	 * @param array  $item        Inquiry.
	 * @param string $column_name Column.
	 * @param string $primary     Primary column.
	 * @return string
	 */
	protected function handle_row_actions( $item, $column_name, $primary ) {
		if ( $primary !== $column_name ) {
			return '';
		}
		$email   = isset( $item['email'] ) ? (string) $item['email'] : '';
		$inquiry = isset( $item['inquiry_id'] ) ? (string) $item['inquiry_id'] : '';
		$actions = array();
		if ( '' !== $email ) {
			$actions['view'] = '<a href="' . esc_url( Admin_Page::person_url( $email ) ) . '">' . esc_html__( 'Details', 'kyc-bridge' ) . '</a>';
		}
		if ( current_user_can( Lifecycle::MANAGE_CAPABILITY ) ) {
			$actions['resync'] = Admin_Actions::link( 'resync', $inquiry, __( 'Re-sync to CRM', 'kyc-bridge' ) );
			if ( '' !== $email ) {
				if ( isset( $item['crm_sync'] ) && 'dead' === $item['crm_sync'] ) {
					$actions['retry'] = Admin_Actions::link( 'retry', $email, __( 'Retry failed jobs', 'kyc-bridge' ) );
				}
				$actions['resend'] = Admin_Actions::link( 'resend', $email, __( 'Resend link', 'kyc-bridge' ) );
			}
		}
		if ( '' !== $email && current_user_can( 'export_others_personal_data' ) ) {
			$actions['export'] = Admin_Actions::link( 'export', $email, __( 'Export', 'kyc-bridge' ) );
		}
		return $this->row_actions( $actions );
	}

	/**
	 * Email.
	 *
	 * @param array $item Inquiry.
	 * @return string
	 */
	protected function column_email( $item ) {
		return isset( $item['email'] ) ? esc_html( (string) $item['email'] ) : '—';
	}

	/**
	 * Inquiry id, linked to Persona's dashboard.
	 *
	 * @param array $item Inquiry.
	 * @return string
	 */
	protected function column_inquiry( $item ) {
		$inquiry = isset( $item['inquiry_id'] ) ? (string) $item['inquiry_id'] : '';
		return '<a href="' . esc_url( Admin_Page::persona_url( $inquiry ) ) . '" target="_blank" rel="noopener noreferrer"><code>' . esc_html( $inquiry ) . '</code></a>';
	}

	/**
	 * Status.
	 *
	 * @param array $item Inquiry.
	 * @return string
	 */
	protected function column_status( $item ) {
		$status = isset( $item['status'] ) ? (string) $item['status'] : '';
		$labels = Admin_Page::status_labels();
		return '<span class="kycb-status kycb-status--' . esc_attr( $status ) . '">' . esc_html( isset( $labels[ $status ] ) ? $labels[ $status ] : $status ) . '</span>';
	}

	/**
	 * User type.
	 *
	 * @param array $item Inquiry.
	 * @return string
	 */
	protected function column_user_type( $item ) {
		return esc_html( Admin_Page::type_label( isset( $item['user_type'] ) ? (string) $item['user_type'] : '' ) );
	}

	/**
	 * Level.
	 *
	 * @param array $item Inquiry.
	 * @return string
	 */
	protected function column_level( $item ) {
		$levels = Admin_Page::level_labels();
		$level  = isset( $item['level'] ) ? (string) $item['level'] : '';
		return esc_html( isset( $levels[ $level ] ) ? $levels[ $level ] : $level );
	}

	/**
	 * Hours waited against the review target.
	 *
	 * @param array $item Inquiry.
	 * @return string
	 */
	protected function column_waiting( $item ) {
		if ( ! isset( $item['waiting_hours'] ) ) {
			return '';
		}
		if ( isset( $item['review_target_hours'] ) ) {
			/* translators: 1: hours waited, 2: target hours (the review target of the inquiry's level, from the bridge). */
			$text = sprintf( __( '%1$s h of %2$s h', 'kyc-bridge' ), number_format_i18n( (float) $item['waiting_hours'], 1 ), number_format_i18n( (float) $item['review_target_hours'] ) );
		} else {
			/* translators: %s: hours waited. */
			$text = sprintf( __( '%s h', 'kyc-bridge' ), number_format_i18n( (float) $item['waiting_hours'], 1 ) );
		}
		$html = esc_html( $text );
		if ( ! empty( $item['overdue'] ) ) {
			$html .= ' <strong class="kycb-badge-overdue">' . esc_html__( 'overdue', 'kyc-bridge' ) . '</strong>';
		}
		return $html;
	}

	/**
	 * Last change.
	 *
	 * @param array $item Inquiry.
	 * @return string
	 */
	protected function column_updated( $item ) {
		return esc_html( Admin_Page::when( isset( $item['updated_at'] ) ? (string) $item['updated_at'] : '' ) );
	}

	/**
	 * CRM sync state, with the error as a tooltip.
	 *
	 * @param array $item Inquiry.
	 * @return string
	 */
	protected function column_crm_sync( $item ) {
		$sync  = isset( $item['crm_sync'] ) ? (string) $item['crm_sync'] : '';
		$error = isset( $item['crm_sync_error'] ) ? (string) $item['crm_sync_error'] : '';
		return '<span class="kycb-sync kycb-sync--' . esc_attr( $sync ) . '" title="' . esc_attr( $error ) . '">' . esc_html( Admin_Page::sync_label( $sync ) ) . '</span>';
	}

	/**
	 * Anything else: nothing.
	 *
	 * @param array  $item        Inquiry.
	 * @param string $column_name Column.
	 * @return string
	 */
	protected function column_default( $item, $column_name ) {
		unset( $item, $column_name );
		return '';
	}
}
